"""Which outbox alerts to send now, and what each acknowledgement means: the delivery state
machine behind :class:`edge.alerts.publisher.AlertPublisher`, without MQTT or threads.

Per connection, alerts go out from the outbox oldest first, at most ``window`` without a PUBACK
(``max_inflight``, or less if the broker's MQTT 5 Receive Maximum says so). What ends an alert's
delivery:

- with ``require_dispatch_ack`` (the default), only dispatch's ack (it stored the alert): the
  broker's PUBACK marks it sent; an alert without a dispatch ack is sent again (same
  ``alert_id``) after ``dispatch_ack_timeout_s``, then after twice that, and so on up to
  ``dispatch_ack_max_interval_s``. A PUBACK saying "no matching subscribers" (MQTT 5 reason 16)
  means nobody got it: it stays, on the same schedule.
- without it, the PUBACK (plain MQTT consumers send no ack); one saying "no matching
  subscribers" still ends delivery, audited as ``undelivered``.
- a refusal (reason >= 0x80) keeps the alert in both modes.

After a lost connection: without ``require_dispatch_ack`` everything still in the outbox goes
again at once; with it, the alerts whose PUBACK never came do (but not another device id's: see
:mod:`edge.alerts.former_ids`), and alerts the broker had acknowledged wait for their resend time.

The caller drives it from one thread: :meth:`Delivery.tick` and :meth:`Delivery.fill_window`
between network reads, :meth:`Delivery.puback` and :meth:`Delivery.dispatch_ack` from its
callbacks, :meth:`Delivery.settle_pubacks` and :meth:`Delivery.settle_dispatch_acks` after them.
Time comes from ``clock`` (monotonic seconds), so a test can step it.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edge import audit as audit_kinds
from edge.alerts.former_ids import FormerIds
from edge.alerts.model import Ack
from edge.alerts.outbox import OutboxItem

# The name these lines always had: operators and their log filters know it.
log = logging.getLogger("edge.alerts.publisher")

POLL_OUTBOX_S = 0.5  # other processes (e.g. 'edge alerts test') may enqueue into the same file
RETRY_HELD_S = 5.0  # alerts held in memory (disk full) are tried on disk this often
NO_MATCHING_SUBSCRIBERS = 16  # MQTT 5 PUBACK reason: accepted, but nobody subscribes to it
REFUSAL = 0x80  # MQTT 5 reason codes from here on refuse
# How far an alert still in the outbox got (see Delivery.delivery_of).
SENT, AT_BROKER, NO_SUBSCRIBER, REFUSED = "sent", "at_broker", "no_subscriber", "refused"

AuditRecords = list[tuple[str, Mapping[str, Any]]]


class AlertQueue(Protocol):
    """What delivery needs of the outbox (:class:`edge.alerts.outbox.Outbox` fits)."""

    def fetch(self, after_seq: int = 0, limit: int = 100) -> list[OutboxItem]: ...
    def get(self, alert_ids: Iterable[str]) -> list[OutboxItem]: ...
    def held(self) -> list[OutboxItem]: ...
    def ack(self, alert_ids: Iterable[str]) -> int: ...
    def retry_held(self) -> None: ...


class AuditSink(Protocol):
    """Where delivery's records go (:class:`edge.audit.AuditLog` fits)."""

    def append_or_log(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None: ...


@dataclass(frozen=True)
class PubAck:
    """The broker's PUBACK for message ``mid``: its reason ``code`` and that code's name."""

    mid: int
    code: int
    reason: str

    @property
    def refused(self) -> bool:
        return self.code >= REFUSAL


@dataclass(frozen=True)
class DeliveryRules:
    """When delivery ends and how often an alert without a dispatch ack goes again."""

    require_dispatch_ack: bool
    ack_timeout_s: float
    ack_max_interval_s: float


# Sends one alert on the network: the message id it went out as, or None if it did not.
Send = Callable[[OutboxItem], int | None]


class Delivery:
    """The in-flight window, the resend schedule and the acks of one device's outbox.

    ``device_id`` is today's ``device.id``; ``former_ids`` words what concerns alerts queued
    under another id; ``broker`` names the broker in log lines."""

    def __init__(
        self,
        queue: AlertQueue,
        rules: DeliveryRules,
        *,
        device_id: str,
        window: int,
        former_ids: FormerIds,
        broker: str,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.rules = rules
        self.device_id = device_id
        self.former_ids = former_ids
        self.broker = broker
        self.audit = audit
        self.clock = clock
        self.max_window = window
        self._window = window
        self._inflight: dict[int, tuple[str, str]] = {}  # mid -> (alert id, its device id)
        self._cursor = 0
        self._sent_held: set[str] = set()
        self._pubacks: list[PubAck] = []
        self._dispatch_acks: list[Ack] = []
        # Alerts sent and still waiting: alert id -> (when to send it again, sends so far). The
        # heap orders the resends; an entry whose time no longer matches the map is stale.
        self._resend: dict[str, tuple[float, int]] = {}
        self._resend_heap: list[tuple[float, str]] = []
        self.more_to_send = True
        self._last_poll = 0.0
        self._last_retry_held = 0.0
        # Alerts sent by this process and still in the outbox: alert id -> SENT, AT_BROKER, ...
        self._delivery: dict[str, str] = {}
        # Counters, read by other threads (ints: atomic enough for monitoring).
        self.sent = 0
        self.acked = 0  # broker PUBACKs that said success
        self.undelivered = 0  # PUBACKs that said "no matching subscribers"
        self.dispatch_acked = 0  # alerts removed by dispatch's acks

    # --- what monitoring reads -----------------------------------------------------------------

    @property
    def inflight(self) -> int:
        """Alerts published on this connection whose PUBACK has not come."""
        return len(self._inflight)

    @property
    def awaiting_ack(self) -> int:
        """Alerts sent and not yet acknowledged (by dispatch, or by the broker in plain mode)."""
        return len(self._resend)

    def delivery_of(self, alert_ids: Iterable[str]) -> dict[str, int]:
        """How far these alerts (those still in the outbox) got in this process, counted:
        'unsent', SENT (no PUBACK came), AT_BROKER (PUBACK, no dispatch ack yet), NO_SUBSCRIBER
        (PUBACK: nobody subscribed), REFUSED (by the broker)."""
        counts: dict[str, int] = {}
        for alert_id in alert_ids:
            state = self._delivery.get(alert_id, "unsent")
            counts[state] = counts.get(state, 0) + 1
        return counts

    # --- the connection ------------------------------------------------------------------------

    def connected(self, receive_maximum: int | None) -> None:
        """A new connection (the broker's Receive Maximum, if it gave one): start over."""
        self.lost()
        self.more_to_send = True
        window = self.max_window
        if receive_maximum is not None and receive_maximum > 0:
            window = min(window, receive_maximum)
        self._window = window

    def lost(self) -> None:
        """The connection ended: its message ids mean nothing now."""
        # Not another id's alert: a broker that refuses those may close the connection for it
        # (Mosquitto 2.0 does, in MQTT 5); sent again at once, it would close the next one.
        lost = [a for a, device_id in self._inflight.values() if device_id == self.device_id]
        self._inflight.clear()
        self._sent_held.clear()
        if self.rules.require_dispatch_ack:
            # Alerts the broker had acknowledged keep their resend times; those whose PUBACK
            # never came go again at once.
            now = self.clock()
            for alert_id in lost:
                if alert_id in self._resend:
                    self._reschedule(alert_id, now)
        else:
            self._cursor = 0
            self._resend.clear()
            self._resend_heap.clear()

    # --- sending -------------------------------------------------------------------------------

    def tick(self, woken: bool) -> None:
        """Between network reads: whether to look at the outbox (``woken``: something was
        enqueued), and store alerts held in memory once the disk has room."""
        now = self.clock()
        if woken:
            self.more_to_send = True
        if self._resend_heap and self._resend_heap[0][0] <= now:
            self.more_to_send = True
        if now - self._last_poll >= POLL_OUTBOX_S:
            self._last_poll = now
            self.more_to_send = True
        if now - self._last_retry_held >= RETRY_HELD_S:
            self._last_retry_held = now
            self.queue.retry_held()

    def fill_window(self, send: Send, connection: int) -> None:
        """Send what is due (resends first, then fresh alerts, then those held in memory) while
        the window has room; ``connection`` numbers the connection in the audit records."""
        room = self._window - len(self._inflight)
        if room <= 0:
            return
        items = self._due_resends(room)
        if len(items) < room:
            items += self._fresh(room - len(items))
        else:
            self.more_to_send = True
        sends: AuditRecords = []
        for n, item in enumerate(items):
            mid = send(item)
            if mid is None:
                # Not connected after all: the next loop notices, and the reconnect resends.
                now = self.clock()
                for unsent in items[n:]:
                    if unsent.alert_id in self._resend:
                        self._reschedule(unsent.alert_id, now)
                break
            sends.append((audit_kinds.SEND, self._sent(item, mid, connection)))
        self.sent += len(sends)
        self._audit(sends)

    def _fresh(self, want: int) -> list[OutboxItem]:
        """Alerts not sent yet (stored after the cursor, then held in memory), at most ``want``."""
        fresh = self.queue.fetch(after_seq=self._cursor, limit=want)
        self.more_to_send = len(fresh) >= want
        items: list[OutboxItem] = []
        for item in fresh:
            if item.alert_id in self._resend:  # sent before and waiting: not fresh
                self._cursor = max(self._cursor, item.seq)
            else:
                items.append(item)
        if len(items) < want:
            items += [
                i
                for i in self.queue.held()
                if i.alert_id not in self._sent_held and i.alert_id not in self._resend
            ][: want - len(items)]
        return items

    def _sent(self, item: OutboxItem, mid: int, connection: int) -> dict[str, Any]:
        """Note ``item`` as sent as message ``mid``; returns its audit record."""
        self._inflight[mid] = (item.alert_id, item.device_id)
        self._delivery[item.alert_id] = SENT
        if item.seq:
            self._cursor = max(self._cursor, item.seq)
        else:
            self._sent_held.add(item.alert_id)
        attempt = self._schedule_resend(item.alert_id)
        if attempt > 1 and item.device_id != self.device_id and self.rules.require_dispatch_ack:
            self.former_ids.unacknowledged(item.device_id, attempt)
        record: dict[str, Any] = {"alert_id": item.alert_id, "mid": mid, "connection": connection}
        if attempt > 1:
            record["attempt"] = attempt
        return record

    def _due_resends(self, room: int) -> list[OutboxItem]:
        """Alerts whose resend time has come (still in the outbox), at most ``room``."""
        now = self.clock()
        due: list[str] = []
        while self._resend_heap and len(due) < room and self._resend_heap[0][0] <= now:
            when, alert_id = heapq.heappop(self._resend_heap)
            entry = self._resend.get(alert_id)
            if entry is not None and entry[0] == when:
                due.append(alert_id)
        if not due:
            return []
        items = self.queue.get(due)
        for gone in set(due) - {item.alert_id for item in items}:
            self._resend.pop(gone, None)  # acknowledged meanwhile (another process) or evicted
            self._delivery.pop(gone, None)
        return items

    def _schedule_resend(self, alert_id: str) -> int:
        """Just sent: when to send it again if it is still here. Returns the attempt number."""
        attempt = self._resend.get(alert_id, (0.0, 0))[1] + 1
        rules = self.rules
        delay = min(rules.ack_timeout_s * 2 ** min(attempt - 1, 30), rules.ack_max_interval_s)
        self._reschedule(alert_id, self.clock() + delay, attempt)
        return attempt

    def _reschedule(self, alert_id: str, when: float, attempt: int | None = None) -> None:
        if attempt is None:
            attempt = self._resend.get(alert_id, (0.0, 0))[1]
        self._resend[alert_id] = (when, attempt)
        heapq.heappush(self._resend_heap, (when, alert_id))

    # --- acknowledgements ----------------------------------------------------------------------

    def puback(self, ack: PubAck) -> None:
        """The broker acknowledged a message (settled by :meth:`settle_pubacks`)."""
        self._pubacks.append(ack)

    def dispatch_ack(self, ack: Ack) -> None:
        """Dispatch stored alerts (settled by :meth:`settle_dispatch_acks`)."""
        self._dispatch_acks.append(ack)

    def settle_pubacks(self) -> None:
        if not self._pubacks:
            return
        acks, self._pubacks = self._pubacks, []
        acked: list[str] = []
        undelivered: list[str] = []
        records: AuditRecords = []
        for ack in acks:
            sent = self._inflight.pop(ack.mid, None)
            if sent is None:
                continue  # status, heartbeat, or a message of an earlier connection
            state = self._settle_one(ack, *sent, records)
            if state == NO_SUBSCRIBER:
                undelivered.append(sent[0])
            elif state == AT_BROKER and not self.rules.require_dispatch_ack:
                acked.append(sent[0])
        if acked:
            self.queue.ack(acked)
            for alert_id in acked:
                self._resend.pop(alert_id, None)
                self._delivery.pop(alert_id, None)
            self.more_to_send = True
        if undelivered:
            self.undelivered += len(undelivered)
            log.warning(
                "broker %s had no subscriber for %d alert(s) (first %s): nobody received them "
                "(is `edge dispatch serve` running?); they stay in the outbox and are sent again",
                self.broker,
                len(undelivered),
                undelivered[0],
            )
        self._audit(records)

    def _settle_one(self, ack: PubAck, alert_id: str, device_id: str, records: AuditRecords) -> str:
        """One PUBACK of an alert: note how far it got (REFUSED, NO_SUBSCRIBER: it stays;
        AT_BROKER), audited into ``records``, and return that."""
        reason = {"alert_id": alert_id, "mid": ack.mid, "reason": ack.reason}
        if ack.refused:
            # Kept in the outbox, so it is sent again (its resend time, or a new connection).
            self._delivery[alert_id] = REFUSED
            if device_id != self.device_id:
                self.former_ids.refused(device_id, ack.reason)
            else:
                log.error(
                    "broker %s refused alert %s: %s (it stays in the outbox)",
                    self.broker,
                    alert_id,
                    ack.reason,
                )
            records.append((audit_kinds.REFUSED, reason))
            return REFUSED
        nobody = ack.code == NO_MATCHING_SUBSCRIBERS
        if nobody and self.rules.require_dispatch_ack:
            self._delivery[alert_id] = NO_SUBSCRIBER
            records.append((audit_kinds.UNDELIVERED, reason))
            return NO_SUBSCRIBER
        self.acked += 1
        if nobody:
            # Plain mode: the broker's word ends delivery, but the record says nobody got it.
            self.undelivered += 1
            records.append((audit_kinds.UNDELIVERED, reason))
        records.append((audit_kinds.ACK, {"alert_id": alert_id, "mid": ack.mid}))
        self._delivery[alert_id] = AT_BROKER
        return AT_BROKER

    def settle_dispatch_acks(self) -> None:
        if not self._dispatch_acks:
            return
        acks, self._dispatch_acks = self._dispatch_acks, []
        ids = [alert_id for ack in acks for alert_id in ack.alert_ids]
        removed = self.queue.ack(ids)
        for alert_id in ids:
            self._resend.pop(alert_id, None)
            self._delivery.pop(alert_id, None)
        self.dispatch_acked += removed
        self.more_to_send = True
        self._audit(
            [
                (audit_kinds.DISPATCH_ACK, {"alert_ids": list(ack.alert_ids), "by": ack.by})
                for ack in acks
            ]
        )

    def _audit(self, records: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        if self.audit is not None:
            self.audit.append_or_log(records)
