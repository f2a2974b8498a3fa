"""No alert is lost end to end: 2,000 alerts from 3 devices while a broker WITHOUT persistence
is restarted 3 times and dispatch is restarted once. Every alert_id ends up in the dispatch
database exactly once and every device's outbox ends empty."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from mqtt_fixtures import Mosquitto, free_port
from test_dispatch_live import dispatch_config

from edge.alerts.service import AlertService
from edge.config import Config
from edge.dispatch.store import Store
from edge.services.dispatch import DispatchServer

DEVICES = ("cam-a", "cam-b", "cam-c")
TOTAL = 2000


def _device_config(base: Config, device_id: str) -> Config:
    data = base.model_dump()
    data["device"] = {"id": device_id}
    data["alerts"].update(dispatch_ack_timeout_s=1.0, dispatch_ack_max_interval_s=2.0)
    return Config.model_validate(data)


def test_no_alert_is_lost_across_broker_and_dispatch_restarts(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'dispatch.db'}"
    base = dispatch_config(mosquitto.port, db, free_port())
    server = DispatchServer(base, state_dir=tmp_path / "centre")
    server.start()
    services = [AlertService(_device_config(base, d), state_dir=tmp_path / d) for d in DEVICES]
    produced: list[list[str]] = [[] for _ in DEVICES]
    counts = [TOTAL // 3 + (1 if n < TOTAL % 3 else 0) for n in range(len(DEVICES))]

    def produce(n: int) -> None:
        for k in range(counts[n]):
            produced[n].append(services[n].test_hit(f"loss {k}", k))
            time.sleep(0.003)

    try:
        for service in services:
            service.start()
        threads = [threading.Thread(target=produce, args=(n,)) for n in range(len(DEVICES))]
        for thread in threads:
            thread.start()
        time.sleep(0.4)
        mosquitto.restart()
        time.sleep(0.6)
        mosquitto.restart()
        time.sleep(0.3)
        server.stop()  # dispatch restarts while devices keep sending
        time.sleep(0.3)
        server = DispatchServer(
            dispatch_config(mosquitto.port, db, free_port()), state_dir=tmp_path / "centre"
        )
        server.start()
        time.sleep(0.5)
        mosquitto.restart()
        for thread in threads:
            thread.join(60)
        ids = [alert_id for per_device in produced for alert_id in per_device]
        assert len(ids) == TOTAL
        for service in services:
            assert service.publisher.wait_empty(60), (
                f"{service.config.device.id}: {service.outbox.stats().total} alerts left"
            )
    finally:
        for service in services:
            service.stop()
        server.stop()
    with Store(db) as store:
        stored = store.alert_ids()
    assert len(stored) == len(set(stored)) == TOTAL
    assert set(stored) == set(ids)
