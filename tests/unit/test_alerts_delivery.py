"""The delivery state machine (edge.alerts.delivery) on its own: no broker, no threads, a clock
the test steps. The same rules run against Mosquitto in tests/integration/test_alerts_mqtt.py
and test_dispatch_ack.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from edge import audit as kinds
from edge.alerts.delivery import (
    AT_BROKER,
    NO_MATCHING_SUBSCRIBERS,
    NO_SUBSCRIBER,
    REFUSED,
    SENT,
    Delivery,
    DeliveryRules,
    PubAck,
)
from edge.alerts.former_ids import FormerIds
from edge.alerts.model import Ack
from edge.alerts.outbox import OutboxItem

DEVICE = "cam-1"
TIMEOUT_S = 10.0
MAX_INTERVAL_S = 35.0
SUCCESS = PubAck(0, 0, "Success")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Queue:
    """An outbox in memory: alerts by seq, with what delivery asked of it."""

    def __init__(self, count: int = 0, device_id: str = DEVICE) -> None:
        self.items: dict[str, OutboxItem] = {}
        self.acked: list[str] = []
        self.retried_held = 0
        for _ in range(count):
            self.add(device_id)

    def add(self, device_id: str = DEVICE) -> str:
        seq = len(self.items) + len(self.acked) + 1
        alert_id = f"a{seq}"
        self.items[alert_id] = OutboxItem(seq, alert_id, b"{}", device_id)
        return alert_id

    def fetch(self, after_seq: int = 0, limit: int = 100) -> list[OutboxItem]:
        later = sorted((i for i in self.items.values() if i.seq > after_seq), key=lambda i: i.seq)
        return later[:limit]

    def get(self, alert_ids: Iterable[str]) -> list[OutboxItem]:
        return [self.items[a] for a in alert_ids if a in self.items]

    def held(self) -> list[OutboxItem]:
        return []

    def ack(self, alert_ids: Iterable[str]) -> int:
        removed = [a for a in alert_ids if self.items.pop(a, None) is not None]
        self.acked += removed
        return len(removed)

    def retry_held(self) -> None:
        self.retried_held += 1


class Audit:
    def __init__(self) -> None:
        self.records: list[tuple[str, Mapping[str, Any]]] = []

    def append_or_log(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        self.records += list(entries)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.records]


class Wire:
    """The network side: every alert sent, as (message id, alert id); ``down`` fails sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.down = False
        self._mid = 0

    def __call__(self, item: OutboxItem) -> int | None:
        if self.down:
            return None
        self._mid += 1
        self.sent.append((self._mid, item.alert_id))
        return self._mid

    def ids(self) -> list[str]:
        return [alert_id for _, alert_id in self.sent]

    def mid_of(self, alert_id: str) -> int:
        return [mid for mid, sent in self.sent if sent == alert_id][-1]


def make(
    queue: Queue, *, require_dispatch_ack: bool = True, window: int = 10
) -> tuple[Delivery, Clock, Audit, Wire]:
    clock, audit = Clock(), Audit()
    delivery = Delivery(
        queue,
        DeliveryRules(require_dispatch_ack, TIMEOUT_S, MAX_INTERVAL_S),
        device_id=DEVICE,
        window=window,
        former_ids=FormerIds("edge/v1", DEVICE, "broker:1883"),
        broker="broker:1883",
        audit=audit,
        clock=clock,
    )
    delivery.connected(None)
    return delivery, clock, audit, Wire()


def ack(delivery: Delivery, wire: Wire, *alert_ids: str, code: int = 0, reason: str = "") -> None:
    for alert_id in alert_ids:
        delivery.puback(PubAck(wire.mid_of(alert_id), code, reason or "Success"))
    delivery.settle_pubacks()


def test_at_most_a_window_of_alerts_waits_for_its_puback() -> None:
    queue = Queue(5)
    delivery, _, _, wire = make(queue, window=2)
    delivery.fill_window(wire, connection=1)
    assert wire.ids() == ["a1", "a2"] and delivery.inflight == 2
    delivery.fill_window(wire, connection=1)
    assert wire.ids() == ["a1", "a2"], "the window is full"
    ack(delivery, wire, "a1")
    delivery.fill_window(wire, connection=1)
    assert wire.ids() == ["a1", "a2", "a3"]


def test_the_brokers_receive_maximum_narrows_the_window() -> None:
    delivery, _, _, wire = make(Queue(5), window=4)
    delivery.connected(1)
    delivery.fill_window(wire, connection=1)
    assert wire.ids() == ["a1"]


def test_with_dispatch_acks_a_puback_only_marks_the_alert_sent() -> None:
    queue = Queue(1)
    delivery, _, audit, wire = make(queue)
    delivery.fill_window(wire, connection=3)
    assert delivery.delivery_of(["a1", "other"]) == {SENT: 1, "unsent": 1}
    ack(delivery, wire, "a1")
    assert "a1" in queue.items and delivery.delivery_of(["a1"]) == {AT_BROKER: 1}
    assert delivery.acked == 1 and delivery.awaiting_ack == 1
    delivery.dispatch_ack(Ack(("a1",), by="dispatch-1", time="2026-01-01T00:00:00Z"))
    delivery.settle_dispatch_acks()
    assert queue.acked == ["a1"] and delivery.dispatch_acked == 1 and delivery.awaiting_ack == 0
    assert audit.kinds() == [kinds.SEND, kinds.ACK, kinds.DISPATCH_ACK]
    assert audit.records[0][1] == {"alert_id": "a1", "mid": 1, "connection": 3}
    assert audit.records[2][1] == {"alert_ids": ["a1"], "by": "dispatch-1"}


def test_without_dispatch_acks_the_puback_removes_the_alert() -> None:
    queue = Queue(2)
    delivery, _, audit, wire = make(queue, require_dispatch_ack=False)
    delivery.fill_window(wire, connection=1)
    ack(delivery, wire, "a1", "a2")
    assert queue.acked == ["a1", "a2"] and delivery.awaiting_ack == 0
    assert audit.kinds() == [kinds.SEND, kinds.SEND, kinds.ACK, kinds.ACK]


def test_an_alert_without_a_dispatch_ack_goes_again_later_and_later_up_to_the_cap() -> None:
    queue = Queue(1)
    delivery, clock, audit, wire = make(queue)
    sent_at = []
    for _ in range(2 * 60 * 5):  # five simulated minutes, in half seconds (exact in binary)
        delivery.tick(woken=False)
        if delivery.more_to_send:
            before = len(wire.sent)
            delivery.fill_window(wire, connection=1)
            if len(wire.sent) > before:
                sent_at.append(round(clock.now - 1000.0, 1))
                ack(delivery, wire, "a1")  # the broker has it; dispatch never answers
        clock.now += 0.5
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(sent_at)]
    assert gaps[:3] == [10.0, 20.0, 35.0] and set(gaps[3:]) == {35.0}
    attempts = [r.get("attempt") for kind, r in audit.records if kind == kinds.SEND]
    assert attempts[:3] == [None, 2, 3]


def test_no_matching_subscribers_keeps_the_alert_with_dispatch_acks() -> None:
    queue = Queue(1)
    delivery, _, audit, wire = make(queue)
    delivery.fill_window(wire, connection=1)
    ack(delivery, wire, "a1", code=NO_MATCHING_SUBSCRIBERS, reason="No matching subscribers")
    assert "a1" in queue.items and delivery.undelivered == 1 and delivery.acked == 0
    assert delivery.delivery_of(["a1"]) == {NO_SUBSCRIBER: 1}
    assert audit.kinds() == [kinds.SEND, kinds.UNDELIVERED]


def test_no_matching_subscribers_ends_delivery_without_dispatch_acks_but_is_audited() -> None:
    queue = Queue(1)
    delivery, _, audit, wire = make(queue, require_dispatch_ack=False)
    delivery.fill_window(wire, connection=1)
    ack(delivery, wire, "a1", code=NO_MATCHING_SUBSCRIBERS, reason="No matching subscribers")
    assert queue.acked == ["a1"] and delivery.undelivered == 1 and delivery.acked == 1
    assert audit.kinds() == [kinds.SEND, kinds.UNDELIVERED, kinds.ACK]


@pytest.mark.parametrize("require_dispatch_ack", [True, False])
def test_a_refused_alert_stays_in_the_outbox(require_dispatch_ack: bool) -> None:
    queue = Queue(1)
    delivery, _, audit, wire = make(queue, require_dispatch_ack=require_dispatch_ack)
    delivery.fill_window(wire, connection=1)
    ack(delivery, wire, "a1", code=0x87, reason="Not authorized")
    assert "a1" in queue.items and delivery.delivery_of(["a1"]) == {REFUSED: 1}
    assert audit.records[-1] == (
        kinds.REFUSED,
        {"alert_id": "a1", "mid": 1, "reason": "Not authorized"},
    )


def test_after_a_lost_connection_only_alerts_without_a_puback_go_again_at_once() -> None:
    queue = Queue(2)
    delivery, _, _, wire = make(queue)
    delivery.fill_window(wire, connection=1)
    ack(delivery, wire, "a1")  # at the broker; a2's PUBACK never comes
    delivery.connected(None)  # lost, and connected again
    delivery.tick(woken=False)
    delivery.fill_window(wire, connection=2)
    assert wire.ids() == ["a1", "a2", "a2"]


def test_after_a_lost_connection_another_ids_alert_waits_for_its_resend_time() -> None:
    queue = Queue()
    queue.add("cam-old")
    delivery, _, _, wire = make(queue)
    delivery.fill_window(wire, connection=1)
    delivery.connected(None)
    delivery.tick(woken=False)
    delivery.fill_window(wire, connection=2)
    assert wire.ids() == ["a1"], "a broker refusing the old id's topics may close the connection"


def test_without_dispatch_acks_a_lost_connection_sends_everything_again() -> None:
    queue = Queue(2)
    delivery, _, _, wire = make(queue, require_dispatch_ack=False)
    delivery.fill_window(wire, connection=1)
    delivery.connected(None)
    delivery.fill_window(wire, connection=2)
    assert wire.ids() == ["a1", "a2", "a1", "a2"]


def test_a_send_that_fails_stops_the_batch_and_is_not_counted() -> None:
    queue = Queue(3)
    delivery, _, audit, wire = make(queue)
    wire.down = True
    delivery.fill_window(wire, connection=1)
    assert delivery.sent == 0 and audit.records == [] and delivery.inflight == 0
    wire.down = False
    delivery.fill_window(wire, connection=1)
    assert wire.ids() == ["a1", "a2", "a3"]


def test_the_outbox_is_polled_and_held_alerts_retried_on_their_own_clocks() -> None:
    queue = Queue()
    delivery, clock, _, wire = make(queue)
    delivery.fill_window(wire, connection=1)
    assert not delivery.more_to_send
    queue.add()  # another process enqueued into the same file
    delivery.tick(woken=False)
    assert delivery.more_to_send and queue.retried_held == 1
    delivery.fill_window(wire, connection=1)
    clock.now += 0.4
    delivery.tick(woken=False)
    assert not delivery.more_to_send and queue.retried_held == 1
    delivery.tick(woken=True)
    assert delivery.more_to_send
    clock.now += 5.0
    delivery.tick(woken=False)
    assert queue.retried_held == 2


def test_a_dispatch_ack_for_an_alert_gone_elsewhere_is_harmless() -> None:
    queue = Queue(1)
    delivery = make(queue)[0]
    delivery.dispatch_ack(Ack(("gone",), by="d", time="2026-01-01T00:00:00Z"))
    delivery.settle_dispatch_acks()
    assert delivery.dispatch_acked == 0
    delivery.puback(SUCCESS)  # a PUBACK of a status message: not an alert's
    delivery.settle_pubacks()
    assert delivery.acked == 0
