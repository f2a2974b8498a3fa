"""``edge alerts {test,tail,review,bench}`` and ``edge outbox {status,flush}``."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho

from edge.alerts.model import Alert, Review
from edge.alerts.outbox import Outbox
from edge.alerts.service import AlertService
from edge.cli.args import (
    Subparsers,
    add_common,
    command_group,
    config_from_args,
    counted,
    positive_int,
)
from edge.clock import utc_rfc3339
from edge.config import Config
from edge.config.base import TOPIC_ID_PATTERN
from edge.errors import ConfigError, EdgeError
from edge.mqtt.oneshot import (
    close,
    connect_and_wait,
    subscriber_client,
    tool_client,
    wait_published,
)
from edge.mqtt.topics import DeviceTopics
from edge.types import Box, ContextFrame

if TYPE_CHECKING:
    from edge.pipeline.context import Background

log = logging.getLogger(__name__)

_STATE_DIR = "directory of the outbox and audit log"
# Test alerts' context frame: a frame of the demo clip in which Lin-Manuel Miranda is alone on
# stage, and his face there (the detector's box; tests/integration/test_context.py checks both).
DEMO_CONTEXT_FRAME = 120
DEMO_CONTEXT_BOX: Box = (190.0, 53.0, 277.7, 140.8)


def register(subparsers: Subparsers) -> None:
    commands = command_group(subparsers, "alerts", "send, watch and measure MQTT alerts")

    test = commands.add_parser(
        "test",
        help="push N test alerts through the outbox and MQTT client",
        description="Enqueue N alerts marked test=true in the device's outbox and send them "
        "exactly as real alerts are sent (with whatever else waits there), each with a context "
        "frame from the demo clip (Lin-Manuel Miranda alone on stage; none with "
        "alerts.include_context false). Exit 0 once all N are acknowledged: by dispatch "
        "(alerts.require_dispatch_ack), else by the broker; 1 if some are still waiting when "
        "--timeout runs out (they stay in the outbox).",
    )
    add_common(test, broker=True, state_dir=_STATE_DIR)
    test.add_argument("--count", type=positive_int, default=1, help="alerts to send")
    test.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the acknowledgements"
    )
    test.add_argument(
        "--no-wait", action="store_true", help="only enqueue; the device's service sends them"
    )
    test.add_argument("--print-ids", action="store_true", help="print each alert id as queued")
    test.set_defaults(
        handler=_test_command,
        exit_codes={1: "when some are still unacknowledged at --timeout (they stay queued)"},
    )

    tail = commands.add_parser(
        "tail",
        help="subscribe and print alerts (for dispatch and debugging)",
        description="Print the alerts of every device (or of --device ID) as they arrive: one "
        "summary line each, naming the device, or the JSON with --json.",
    )
    add_common(tail, broker=True, state_dir=_STATE_DIR)
    tail.add_argument(
        "--device",
        default="+",
        help="the one device id to watch, or '+' for every device (default: +)",
    )
    tail.add_argument("--count", type=positive_int, help="exit after this many alerts")
    tail.add_argument("--timeout", type=float, help="exit after this many seconds")
    tail.add_argument("--json", action="store_true", help="print each alert as one JSON line")
    tail.set_defaults(
        handler=_tail_command, exit_codes={1: "when fewer than --count arrived by --timeout"}
    )

    review = commands.add_parser(
        "review",
        help="publish a dispatch decision (confirm/reject) for an alert",
        description="What a dispatch desk sends: a review-v1 message on the device's review topic.",
    )
    add_common(review, broker=True, state_dir=_STATE_DIR)
    review.add_argument("alert_id", help="the alert's alert_id (a UUIDv7)")
    review.add_argument(
        "decision", choices=["confirm", "reject"], help="confirm the match, or reject it"
    )
    review.add_argument("--device", help="device id (default: this device's id)")
    review.add_argument("--by", help="operator id")
    review.add_argument("--note", help="free text")
    review.set_defaults(handler=_review_command)

    bench = commands.add_parser(
        "bench",
        help="measure durable enqueue, drain and sustained alerts/s against a broker",
        description="Runs in a temporary state directory (the device's outbox is not touched).",
    )
    add_common(bench, broker=True)
    bench.add_argument("--count", type=positive_int, default=1000, help="alerts per phase")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument(
        "--no-fsync", action="store_true", help="audit log without fsync (shows what it costs)"
    )
    bench.set_defaults(
        handler=_bench_command, exit_codes={1: "when some alerts did not arrive (incomplete)"}
    )

    outbox_commands = command_group(
        subparsers, "outbox", "inspect or flush the durable alert outbox"
    )
    status = outbox_commands.add_parser("status", help="alerts waiting for acknowledgement")
    add_common(status, state_dir=_STATE_DIR)
    status.add_argument("--json", action="store_true", help="print as JSON")
    status.set_defaults(handler=_status_command)
    flush = outbox_commands.add_parser(
        "flush", help="send everything waiting now and exit when the outbox is empty"
    )
    add_common(flush, broker=True, state_dir=_STATE_DIR)
    flush.add_argument(
        "--timeout", type=float, default=60.0, help="give up after this many seconds"
    )
    flush.set_defaults(
        handler=_flush_command, exit_codes={1: "when alerts still wait after --timeout"}
    )


def _device_arg(args: argparse.Namespace, config: Config) -> str:
    device: str | None = getattr(args, "device", None)
    if device is None:
        return config.device.id
    if device != "+" and not re.fullmatch(TOPIC_ID_PATTERN, device):
        raise ConfigError(f"--device {device!r} is not a valid device id")
    return device


# --- alerts test / outbox flush ----------------------------------------------------------------


def _test_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    content = config.alerts
    context = (
        demo_context_frame(content.context_width, content.context_background)
        if content.include_context
        else None
    )
    service = AlertService(config, state_dir=args.state_dir, as_tool=True)
    ids: list[str] = []
    try:
        if not args.no_wait:
            service.start()
        for n in range(args.count):
            label = f"edge alerts test {n + 1}/{args.count}"
            alert_id = service.test_hit(label, n, context=context)
            ids.append(alert_id)
            if args.print_ids:
                print(alert_id, flush=True)
        if args.no_wait:
            print(f"queued {len(ids)} test alerts in {service.outbox.path}")
            return 0
        started = time.monotonic()
        waiting = service.publisher.wait_acked(ids, args.timeout)
        took = time.monotonic() - started
    finally:
        service.publisher.stop()  # it drains what it can: what still waits is counted after
        others = _still_waiting(service, ids)
        service.stop()
    by = _acknowledger(config, service)
    if waiting:
        why = service.publisher.last_error or "no acknowledgement yet"
        print(
            f"edge: {len(ids) - len(waiting)}/{len(ids)} test alerts acknowledged by {by} "
            f"within {args.timeout:g}s ({why}); the other {len(waiting)} stay in the outbox "
            "and will be sent later",
            file=sys.stderr,
        )
        return 1
    print(
        f"sent {counted(len(ids), 'test alert')}: all acknowledged by {by} "
        f"({took:.2f}s after the last was queued){others}"
    )
    return 0


def _acknowledger(config: Config, service: AlertService) -> str:
    """Who said an alert was delivered: dispatch, or only the broker (plain MQTT mode)."""
    broker = service.publisher.broker
    if config.alerts.require_dispatch_ack:
        return f"dispatch (via {broker})"
    return f"the broker {broker} (alerts.require_dispatch_ack is off)"


def _still_waiting(service: AlertService, sent: list[str]) -> str:
    """'; 1 other alert (queued as edge-0) still waits in the outbox: ...' or ''."""
    try:
        counts = service.outbox.device_counts()
    except EdgeError:
        return ""
    left = sum(counts.values()) - sum(1 for i in sent if service.outbox.contains(i))
    if left <= 0:
        return ""
    others = service.publisher.former_ids.summary(counts)
    verb = "waits" if left == 1 else "wait"
    return (
        f"; {counted(left, 'other alert')}{f' ({others})' if others else ''} still {verb} in "
        "the outbox: edge outbox status"
    )


def demo_context_frame(width: int, background: Background) -> ContextFrame | None:
    """The context frame of test alerts (:data:`DEMO_CONTEXT_FRAME` of the demo clip), made as
    real ones are (nobody else is in that frame to blur); None if the clip cannot be read."""
    import cv2
    import numpy as np

    from edge.demo import DEMO_CLIP
    from edge.pipeline.context import encode_context

    capture = cv2.VideoCapture(str(DEMO_CLIP))
    try:
        for _ in range(DEMO_CONTEXT_FRAME + 1):
            ok, image = capture.read()
            if not ok:
                log.warning("cannot read %s: test alerts go without a context frame", DEMO_CLIP)
                return None
    finally:
        capture.release()
    frame = np.asarray(image, dtype=np.uint8)
    return encode_context(frame, DEMO_CONTEXT_BOX, (), width, background)


def _flush_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    service = AlertService(config, state_dir=args.state_dir, as_tool=True)
    # Counted before the publisher starts: once started it may empty the outbox at once.
    before = service.outbox.stats().total
    with service:
        emptied = service.publisher.wait_empty(args.timeout)
        left = service.outbox.stats().total
        by = _acknowledger(config, service)
        why = service.publisher.last_error
    if not emptied:
        print(
            f"edge: {counted(left, 'alert')} still waiting after {args.timeout:g}s "
            f"({why or 'no ack yet'})",
            file=sys.stderr,
        )
        return 1
    print(f"outbox empty: {counted(before, 'alert')} acknowledged by {by}")
    return 0


# --- outbox status -----------------------------------------------------------------------------


def _status_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    path = config.paths(args.state_dir).outbox
    if not path.exists():
        result: dict[str, Any] = {
            "path": str(path),
            "exists": False,
            "depth": 0,
            "bytes": 0,
            "devices": {},
        }
        oldest: list[dict[str, Any]] = []
    else:
        with Outbox(path, config.outbox) as outbox:
            stats = outbox.stats()
            devices = outbox.device_counts()
            oldest = [
                {
                    "seq": item.seq,
                    "alert_id": item.alert_id,
                    "device_id": item.device_id,
                    "bytes": len(item.payload),
                }
                for item in outbox.fetch(limit=5)
            ]
        result = {"path": str(path), "exists": True, **stats.as_dict(), "devices": devices}
        result.pop("held_in_memory", None)  # only meaningful inside the running service
    result["max_alerts"] = config.outbox.max_alerts
    result["max_bytes"] = config.outbox.max_bytes
    result["when_full"] = config.outbox.when_full
    result["oldest"] = oldest
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(f"outbox {path}")
    if not result["exists"]:
        print("  does not exist yet: nothing queued")
        return 0
    age = result["oldest_age_s"]
    print(
        f"  waiting:  {counted(result['depth'], 'alert')}, {counted(result['bytes'], 'byte')} "
        f"(bounds {config.outbox.max_alerts} alerts, {config.outbox.max_bytes} bytes, "
        f"when full: {config.outbox.when_full})"
    )
    device_id = config.device.id
    for device, count in sorted(result["devices"].items()):
        note = (
            "this device"
            if device == device_id
            else f"not device.id ({device_id}): sent as {device}, on its topics"
        )
        print(f"  as {device}: {counted(count, 'alert')} ({note})")
    print(f"  oldest:   {'-' if age is None else f'{age:.1f}s ago'}")
    for item in oldest:
        print(
            f"    #{item['seq']} {item['alert_id']} as {item['device_id']} ({item['bytes']} bytes)"
        )
    return 0


# --- alerts tail / review ----------------------------------------------------------------------


def _tail_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    topic = DeviceTopics(config.mqtt.topic_prefix, _device_arg(args, config)).alert
    received = 0
    done = threading.Event()
    lock = threading.Lock()

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        nonlocal received
        try:
            alert = Alert.decode(bytes(message.payload)).document()
        except EdgeError as exc:
            print(f"edge: invalid alert on {message.topic}: {exc}", file=sys.stderr, flush=True)
            return
        with lock:
            if done.is_set():
                return
            print(_alert_line(alert, args.json), flush=True)
            received += 1
            if args.count is not None and received >= args.count:
                done.set()

    client = subscriber_client(config.mqtt, topic, on_message)
    try:
        print(f"edge: listening on {topic}", file=sys.stderr, flush=True)
        done.wait(args.timeout)
    finally:
        close(client)
    if args.count is not None and received < args.count:
        print(f"edge: {received}/{args.count} alerts before the timeout", file=sys.stderr)
        return 1
    return 0


def _alert_line(alert: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(alert, sort_keys=True, separators=(",", ":"))
    entry, watchlist = alert["entry"], alert["watchlist"]
    parts = [
        alert["event_time"],
        alert["device_id"],
        f"entry={entry['id']} ({entry['label']})",
        f"score={alert['score']:.3f}/{alert['threshold']:.3f}",
        f"quality={alert['quality']:.2f}",
        f"track={alert['track_id']}",
        f"watchlist={watchlist['id']}@{watchlist['version']}",
        f"alert={alert['alert_id']}",
    ]
    if "location" in alert:
        parts.append(f"location={json.dumps(alert['location'], sort_keys=True)}")
    if "crop" in alert:
        parts.append(f"crop={len(alert['crop']['data']) * 3 // 4}B")
    if "context" in alert:
        context = alert["context"]
        size = len(context["data"]) * 3 // 4
        parts.append(f"context={context['width']}x{context['height']},{size}B")
    if alert["test"]:
        parts.append("TEST")
    return " ".join(parts)


def _review_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    review = Review(
        alert_id=args.alert_id,
        decision=args.decision,
        by=args.by,
        time=utc_rfc3339(),
        note=args.note,
    )
    payload = review.encode()
    Review.decode(payload)  # the same check the device makes: fail here, not silently there
    topic = DeviceTopics(config.mqtt.topic_prefix, _device_arg(args, config)).review
    client = tool_client(config.mqtt, "review")
    connect_and_wait(client, config.mqtt)
    try:
        wait_published(
            [client.publish(topic, payload, qos=1)],
            config.mqtt.connect_timeout_s,
            f"the review of alert {args.alert_id}",
        )
    finally:
        close(client)
    print(f"published {args.decision} for alert {args.alert_id} on {topic}")
    return 0


# --- alerts bench ------------------------------------------------------------------------------


def _bench_command(args: argparse.Namespace) -> int:
    from edge.bench.alerts import format_report, run_alert_bench

    config = config_from_args(args)
    report = run_alert_bench(config, count=args.count, audit_fsync=not args.no_fsync)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(format_report(report))
    return 0 if report["complete"] else 1
