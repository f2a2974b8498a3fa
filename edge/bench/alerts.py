"""``edge alerts bench``: durable enqueue rate, drain rate and sustained end-to-end alerts/s.

Each phase sends ``count`` alerts through the real outbox (SQLite WAL, synchronous=FULL), audit
log and MQTT client to the configured broker, in a throw-away state directory, while a QoS 1
subscriber counts the distinct alert ids that arrive. It measures the device-to-broker path:
delivery ends at the broker's PUBACK (``alerts.require_dispatch_ack`` off); dispatch's own side
is ``edge bench dispatch``.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from edge.alerts.service import AlertService
from edge.config import Config
from edge.config.alerts import AlertsConfig, AuditConfig, OutboxConfig
from edge.config.device import DeviceConfig
from edge.errors import BrokerError
from edge.mqtt.oneshot import subscriber_client
from edge.mqtt.topics import DeviceTopics


class _Counter:
    """Distinct alert ids received by a subscriber."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.lock = threading.Lock()

    def on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            alert_id = json.loads(message.payload)["alert_id"]
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.ids.add(alert_id)

    def wait_for(self, ids: set[str], timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if ids <= self.ids:
                    break
            time.sleep(0.01)
        with self.lock:
            return len(ids & self.ids)


def _hit(service: AlertService, n: int) -> str:
    return service.test_hit("bench", n, source="bench", entry_id=f"e{n % 100}")


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def run_alert_bench(
    config: Config, *, count: int, audit_fsync: bool = True, timeout_s: float = 120.0
) -> dict[str, Any]:
    device_id = f"bench-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as work:
        state_dir = Path(work)
        bench_config = config.model_copy(
            update={
                "device": DeviceConfig.model_validate({"id": device_id}),
                "outbox": OutboxConfig.model_validate({"max_alerts": max(count * 2, 1000)}),
                "audit": AuditConfig.model_validate({"fsync": audit_fsync}),
                # The device-to-broker path: the bench's subscriber sends no dispatch ack.
                "alerts": AlertsConfig.model_validate(
                    {**config.alerts.model_dump(), "require_dispatch_ack": False}
                ),
            }
        )
        counter = _Counter()
        subscriber = subscriber_client(
            bench_config.mqtt,
            DeviceTopics(config.mqtt.topic_prefix, device_id).alert,
            counter.on_message,
        )
        try:
            service = AlertService(bench_config, state_dir=state_dir, as_tool=True)
            try:
                report = _phases(service, counter, count, timeout_s)
            finally:
                service.stop()
        finally:
            subscriber.disconnect()
            subscriber.loop_stop()
    report.update(
        {
            "count": count,
            "broker": f"{config.mqtt.host}:{config.mqtt.effective_port}",
            "mqtt_protocol": config.mqtt.protocol,
            "audit_fsync": audit_fsync,
        }
    )
    return report


def _phases(
    service: AlertService, counter: _Counter, count: int, timeout_s: float
) -> dict[str, Any]:
    # 1. Durable enqueue alone (the publisher is not running yet).
    started = time.perf_counter()
    first_ids = {_hit(service, n) for n in range(count)}
    enqueue_s = time.perf_counter() - started

    # 2. Drain a full outbox: connect, publish, PUBACK, delete.
    started = time.perf_counter()
    service.start()
    if not service.publisher.wait_connected(service.config.mqtt.connect_timeout_s):
        raise BrokerError(
            f"bench: cannot connect to {service.publisher.broker}: {service.publisher.last_error}"
        )
    drained = service.publisher.wait_empty(timeout_s)
    drain_s = time.perf_counter() - started
    drain_received = counter.wait_for(first_ids, 10.0)

    # 3. Sustained: enqueue and send at the same time, until the last one is acknowledged.
    started = time.perf_counter()
    second_ids = {_hit(service, count + n) for n in range(count)}
    waiting = service.publisher.wait_acked(second_ids, timeout_s)
    sustained_s = time.perf_counter() - started
    sustained_received = counter.wait_for(second_ids, 10.0)

    return {
        "enqueue": {"seconds": round(enqueue_s, 3), "per_s": _rate(count, enqueue_s)},
        "drain": {
            "seconds": round(drain_s, 3),
            "per_s": _rate(count, drain_s),
            "acknowledged": count if drained else count - service.outbox.stats().total,
            "received": drain_received,
        },
        "sustained": {
            "seconds": round(sustained_s, 3),
            "per_s": _rate(count, sustained_s),
            "acknowledged": count - len(waiting),
            "received": sustained_received,
        },
        "complete": drained
        and not waiting
        and drain_received == count
        and sustained_received == count,
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"alerts bench: {report['count']} alerts per phase to {report['broker']} "
        f"(MQTT {report['mqtt_protocol']}, audit fsync {'on' if report['audit_fsync'] else 'off'})"
    ]
    for phase, what in (
        ("enqueue", "durable enqueue (SQLite commit + audit)"),
        ("drain", "drain a full outbox (publish, PUBACK, delete)"),
        ("sustained", "sustained end to end (enqueue -> acknowledged)"),
    ):
        result = report[phase]
        extra = ""
        if "received" in result:
            extra = f"; subscriber received {result['received']}/{report['count']}"
        lines.append(
            f"  {what:<50} {result['per_s']:>9.1f} alerts/s  ({result['seconds']:.2f}s{extra})"
        )
    lines.append("  complete" if report["complete"] else "  INCOMPLETE: some alerts did not arrive")
    return "\n".join(lines)
