"""The device's MQTT presence: publishing the outbox, dispatch's end-to-end acknowledgements,
the retained status and its last will, the heartbeat, and review decisions.

Everything that touches the paho client runs on one thread (:class:`edge.mqtt.connection.Connection`
drives ``Client.loop()`` itself). Callbacks therefore run on that thread too, and the map from
message id (``MQTTMessageInfo.mid``) to alert id needs no lock: a PUBACK can never be handled
before the publish that it acknowledges has been recorded.

Per connection: on CONNACK paho's own queue of unacknowledged messages is dropped (the outbox is
the queue) and alerts are published from the outbox, oldest first, at most ``max_inflight`` at a
time.

When is an alert delivered? With ``alerts.require_dispatch_ack`` (the default) only when
dispatch says it stored it: its ack on ``<prefix>/<device>/ack`` deletes the alert. The broker's
PUBACK for the message id that carried it (``MQTTMessageInfo.mid``) only marks it sent; an alert
without a dispatch ack is sent again (same ``alert_id``) after ``dispatch_ack_timeout_s``, then
after twice that, and so on up to ``dispatch_ack_max_interval_s``. Without
``require_dispatch_ack`` the PUBACK deletes it (plain MQTT consumers send no ack). An MQTT 5
PUBACK with reason 16, "no matching subscribers", means nobody received the alert: with
``require_dispatch_ack`` it stays and is sent again on the same schedule; without it, it is
deleted as before but audited as ``undelivered``. A refusal (reason >= 0x80) keeps the alert in
both modes.

After a lost connection: without ``require_dispatch_ack`` everything still in the outbox is
published again at once; with it, the alerts whose PUBACK never came are, and alerts the broker
had acknowledged wait for their resend time.

Each alert goes out on the topics of the device id it was made under (its outbox row's), not
necessarily today's ``device.id``: its ``device_id`` is evidence of which device saw the person
and is never rewritten, and dispatch takes an alert only from its own device's topic (what the
broker's ACL authenticates). So after ``device.id`` changed while alerts waited, the publisher
also subscribes to the old id's ack (and review) topics, before the first of its alerts goes out
on a connection, and says at start what the outbox holds under other ids. A broker that refuses
this device those topics (its ACL) is logged, with what the operator must do (at most every
ten minutes), and such an alert waits for its resend time even after a lost connection.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge import audit as audit_kinds
from edge.alerts.former_ids import FormerIds
from edge.alerts.outbox import Outbox, OutboxItem
from edge.alerts.presence import AuditHeads, DeviceStatus, status_payload
from edge.alerts.schema import Ack, Review, decode_ack, decode_review
from edge.audit import AuditLog
from edge.clock import utc_rfc3339
from edge.config.alerts import AlertsConfig
from edge.config.device import DeviceConfig
from edge.config.mqtt import MqttConfig
from edge.errors import EdgeError
from edge.mqtt.connection import Connection
from edge.mqtt.topics import DeviceTopics, parse_device_topic

__all__ = ["AT_BROKER", "NO_SUBSCRIBER", "REFUSED", "SENT", "AlertPublisher", "DeviceStatus"]

log = logging.getLogger(__name__)
T = TypeVar("T")
SubscribeCallback = Callable[[paho.Client, Any, int, list[ReasonCode], Properties | None], None]

_IDLE_LOOP_S = 0.05
_POLL_OUTBOX_S = 0.5
_RETRY_HELD_S = 5.0
NO_MATCHING_SUBSCRIBERS = 16  # MQTT 5 PUBACK reason: accepted, but nobody subscribes to it
# How far an alert still in the outbox got (see AlertPublisher.delivery_of).
SENT, AT_BROKER, NO_SUBSCRIBER, REFUSED = "sent", "at_broker", "no_subscriber", "refused"


class AlertPublisher:
    """Keeps one MQTT connection up and drains an :class:`Outbox` into it.

    ``publish_status`` (retained status, last will) and ``subscribe_reviews`` belong to the
    device's service; tools such as ``edge alerts test`` turn them off so they do not overwrite
    the device's status.
    """

    def __init__(
        self,
        mqtt: MqttConfig,
        device: DeviceConfig,
        outbox: Outbox,
        audit: AuditLog | None = None,
        *,
        password: str | None = None,
        client_id_suffix: str = "",
        persistent_session: bool | None = None,
        publish_status: bool = True,
        subscribe_reviews: bool = True,
        heartbeat: bool = True,
        status: DeviceStatus | None = None,
        stats_provider: Callable[[], Mapping[str, Any]] | None = None,
        on_review: Callable[[Review], None] | None = None,
        alerts: AlertsConfig | None = None,
        subscribe_acks: bool | None = None,
    ) -> None:
        content = alerts or AlertsConfig.model_validate({})
        self.require_dispatch_ack = content.require_dispatch_ack
        self._ack_timeout_s = content.dispatch_ack_timeout_s
        self._ack_max_interval_s = content.dispatch_ack_max_interval_s
        self._subscribe_acks = (
            self.require_dispatch_ack if subscribe_acks is None else subscribe_acks
        )
        self.mqtt = mqtt
        self.device = device
        self.outbox = outbox
        self.audit = audit
        self.topics = DeviceTopics(mqtt.topic_prefix, device.id)
        self.client_id = (mqtt.client_id or f"edge-{device.id}") + client_id_suffix
        self._publish_status = publish_status
        self._subscribe_reviews = subscribe_reviews
        self._heartbeat = heartbeat
        self._status = status or DeviceStatus()
        self._stats_provider = stats_provider
        self._on_review = on_review
        self._connection = Connection(
            mqtt,
            self.client_id,
            persistent_session=(
                mqtt.persistent_session if persistent_session is None else persistent_session
            ),
            password=password,
            on_connected=self._on_connect,
            on_lost=self._forget_connection,
            subscriptions="review decisions and dispatch acks will not arrive; check the "
            "broker's ACL for this device's review and ack topics",
        )
        self.broker = self._connection.broker
        self._client = self._connection.client
        if publish_status:
            self._client.will_set(
                self.topics.status,
                status_payload(device.id, self._status, "offline", "connection lost"),
                qos=1,
                retain=True,
            )
        # The connection's handler logs a refused subscription; other ids' are handled here.
        self._on_any_subscribe = cast(SubscribeCallback, self._client.on_subscribe)
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._status_dirty = threading.Event()
        self._started_at = time.monotonic()

        # Loop-thread state.
        self._window = mqtt.max_inflight
        self._inflight: dict[int, tuple[str, str]] = {}  # mid -> (alert id, its device id)
        self._cursor = 0
        self._sent_held: set[str] = set()
        self._acks: list[tuple[int, ReasonCode]] = []
        self._dispatch_acks: list[Ack] = []
        # Alerts sent and still waiting: alert id -> (when to send it again, sends so far). The
        # heap orders the resends; an entry whose time no longer matches the map is stale.
        self._resend: dict[str, tuple[float, int]] = {}
        self._resend_heap: list[tuple[float, str]] = []
        self._more_to_send = True
        self._last_poll = 0.0
        self._last_heartbeat = 0.0
        self._last_retry_held = 0.0
        # Device ids whose ack/review topics this connection subscribed to (ours and those of
        # alerts queued under an earlier device.id), and other ids' subscriptions awaiting SUBACK.
        self._listening: set[str] = set()
        self._subscribing: dict[int, str] = {}
        self.former_ids = FormerIds(mqtt.topic_prefix, device.id, self.broker)
        # Alerts sent by this process and still in the outbox: alert id -> SENT, AT_BROKER, ...
        self._delivery: dict[str, str] = {}

        self._heads = AuditHeads(audit, continuing=publish_status)

        # Counters, read by other threads (ints: atomic enough for monitoring).
        self.sent = 0
        self.acked = 0  # broker PUBACKs that said success
        self.undelivered = 0  # PUBACKs that said "no matching subscribers"
        self.dispatch_acked = 0  # alerts removed by dispatch's acks

    # --- public, any thread --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        try:
            self.former_ids.warn_at_start(self.outbox.device_counts())
        except EdgeError as exc:
            log.error("%s", exc)
        self._thread = threading.Thread(
            target=self._connection.run,
            args=(self._step, self._shutdown),
            name=f"mqtt-{self.client_id}",
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Publish 'offline' (if this publisher owns the status), let in-flight alerts be
        acknowledged for up to ``drain_timeout_s``, disconnect. Unacknowledged alerts stay in the
        outbox."""
        self._drain_timeout = drain_timeout_s
        self._connection.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=drain_timeout_s + self.mqtt.connect_timeout_s + 5.0)
            self._thread = None

    def __enter__(self) -> AlertPublisher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wake(self) -> None:
        """Look at the outbox now (called by :meth:`Outbox.enqueue`)."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connection.connected.is_set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def connections(self) -> int:
        return self._connection.connections

    @property
    def last_error(self) -> str | None:
        return self._connection.last_error

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connection.connected.wait(timeout_s)

    def set_status(self, status: DeviceStatus) -> None:
        """Report new model or watchlist versions: the retained status is republished."""
        self._status = status
        self._status_dirty.set()
        self._wake.set()

    def wait_acked(self, alert_ids: Iterable[str], timeout_s: float) -> set[str]:
        """Wait until these alerts have left the outbox; returns those still waiting."""
        waiting = set(alert_ids)
        deadline = time.monotonic() + timeout_s
        while waiting:
            waiting = {alert_id for alert_id in waiting if self.outbox.contains(alert_id)}
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return waiting

    def delivery_of(self, alert_ids: Iterable[str]) -> dict[str, int]:
        """How far these alerts (those still in the outbox) got in this process, counted:
        'unsent', SENT (no PUBACK came), AT_BROKER (PUBACK, no dispatch ack yet), NO_SUBSCRIBER
        (PUBACK: nobody subscribed), REFUSED (by the broker)."""
        counts: dict[str, int] = {}
        for alert_id in alert_ids:
            state = self._delivery.get(alert_id, "unsent")
            counts[state] = counts.get(state, 0) + 1
        return counts

    def wait_empty(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.outbox.stats().total:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    # --- the loop thread -----------------------------------------------------------------------

    _drain_timeout = 2.0

    def _step(self) -> None:
        timeout = 0.0 if self._wake.is_set() else _IDLE_LOOP_S
        rc = self._client.loop(timeout=timeout)
        self._settle_acks()
        self._settle_dispatch_acks()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._connection.ended(
                rc, "unacknowledged alerts stay in the outbox and are resent on reconnect"
            )
            return
        if not self.connected:
            return
        now = time.monotonic()
        if self._wake.is_set():
            self._wake.clear()
            self._more_to_send = True
        if self._resend_heap and self._resend_heap[0][0] <= now:
            self._more_to_send = True
        if now - self._last_poll >= _POLL_OUTBOX_S:
            # Other processes (e.g. 'edge alerts test') may have enqueued into the same file.
            self._last_poll = now
            self._more_to_send = True
        if now - self._last_retry_held >= _RETRY_HELD_S:
            self._last_retry_held = now
            self.outbox.retry_held()
        if self._status_dirty.is_set() and self._publish_status:
            self._status_dirty.clear()
            self._publish_online()
        if self._more_to_send:
            self._fill_window()
        if self._heartbeat and now - self._last_heartbeat >= self.mqtt.heartbeat_s:
            self._last_heartbeat = now
            self._publish_heartbeat()

    def _fill_window(self) -> None:
        room = self._window - len(self._inflight)
        if room <= 0:
            return
        items = self._due_resends(room)
        if len(items) < room:
            want = room - len(items)
            fresh = self.outbox.fetch(after_seq=self._cursor, limit=want)
            self._more_to_send = len(fresh) >= want
            for item in fresh:
                if item.alert_id in self._resend:  # sent before and waiting: not fresh
                    self._cursor = max(self._cursor, item.seq)
                else:
                    items.append(item)
            if len(items) < room:
                items += [
                    i
                    for i in self.outbox.held()
                    if i.alert_id not in self._sent_held and i.alert_id not in self._resend
                ][: room - len(items)]
        else:
            self._more_to_send = True
        sends: list[tuple[str, Mapping[str, Any]]] = []
        for n, item in enumerate(items):
            if item.device_id not in self._listening:
                self._listen(item.device_id)  # before the alert: its ack must find us subscribed
            topic = DeviceTopics(self.mqtt.topic_prefix, item.device_id).alert
            info = self._client.publish(topic, item.payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # Not connected after all: the next loop() notices, and the reconnect resends.
                log.debug("publish of alert %s not sent: %s", item.alert_id, info.rc)
                now = time.monotonic()
                for unsent in items[n:]:
                    if unsent.alert_id in self._resend:
                        self._reschedule(unsent.alert_id, now)
                break
            self._inflight[info.mid] = (item.alert_id, item.device_id)
            self._delivery[item.alert_id] = SENT
            if item.seq:
                self._cursor = max(self._cursor, item.seq)
            else:
                self._sent_held.add(item.alert_id)
            attempt = self._schedule_resend(item.alert_id)
            if attempt > 1 and item.device_id != self.device.id and self.require_dispatch_ack:
                self.former_ids.unacknowledged(item.device_id, attempt)
            record: dict[str, Any] = {
                "alert_id": item.alert_id,
                "mid": info.mid,
                "connection": self.connections,
            }
            if attempt > 1:
                record["attempt"] = attempt
            sends.append((audit_kinds.SEND, record))
        self.sent += len(sends)
        self._audit(sends)

    def _due_resends(self, room: int) -> list[OutboxItem]:
        """Alerts whose resend time has come (still in the outbox), at most ``room``."""
        now = time.monotonic()
        due: list[str] = []
        while self._resend_heap and len(due) < room and self._resend_heap[0][0] <= now:
            when, alert_id = heapq.heappop(self._resend_heap)
            entry = self._resend.get(alert_id)
            if entry is not None and entry[0] == when:
                due.append(alert_id)
        if not due:
            return []
        items = self.outbox.get(due)
        for gone in set(due) - {item.alert_id for item in items}:
            self._resend.pop(gone, None)  # acknowledged meanwhile (another process) or evicted
            self._delivery.pop(gone, None)
        return items

    def _schedule_resend(self, alert_id: str) -> int:
        """Just sent: when to send it again if it is still here. Returns the attempt number."""
        attempt = self._resend.get(alert_id, (0.0, 0))[1] + 1
        delay = min(self._ack_timeout_s * 2 ** min(attempt - 1, 30), self._ack_max_interval_s)
        self._reschedule(alert_id, time.monotonic() + delay, attempt)
        return attempt

    def _reschedule(self, alert_id: str, when: float, attempt: int | None = None) -> None:
        if attempt is None:
            attempt = self._resend.get(alert_id, (0.0, 0))[1]
        self._resend[alert_id] = (when, attempt)
        heapq.heappush(self._resend_heap, (when, alert_id))

    @property
    def awaiting_dispatch(self) -> int:
        """Alerts sent and not yet acknowledged (by dispatch, or by the broker in plain mode)."""
        return len(self._resend)

    def _settle_acks(self) -> None:
        if not self._acks:
            return
        acks, self._acks = self._acks, []
        acked: list[str] = []
        undelivered: list[str] = []
        records: list[tuple[str, Mapping[str, Any]]] = []
        for mid, reason in acks:
            sent = self._inflight.pop(mid, None)
            if sent is None:
                continue  # status, heartbeat, or a message of an earlier connection
            alert_id, device_id = sent
            if reason.is_failure:
                # Kept in the outbox, so it is sent again (its resend time, or a new connection).
                self._delivery[alert_id] = REFUSED
                if device_id != self.device.id:
                    self.former_ids.refused(device_id, str(reason))
                else:
                    log.error(
                        "broker %s refused alert %s: %s (it stays in the outbox)",
                        self.broker,
                        alert_id,
                        reason,
                    )
                records.append(
                    (audit_kinds.REFUSED, {"alert_id": alert_id, "mid": mid, "reason": str(reason)})
                )
                continue
            if reason.value == NO_MATCHING_SUBSCRIBERS and self.require_dispatch_ack:
                self._delivery[alert_id] = NO_SUBSCRIBER
                undelivered.append(alert_id)
                records.append(
                    (
                        audit_kinds.UNDELIVERED,
                        {"alert_id": alert_id, "mid": mid, "reason": str(reason)},
                    )
                )
                continue
            self.acked += 1
            if reason.value == NO_MATCHING_SUBSCRIBERS:
                # Plain mode: the broker's word ends delivery, but the record says nobody got it.
                self.undelivered += 1
                record = {"alert_id": alert_id, "mid": mid, "reason": str(reason)}
                records.append((audit_kinds.UNDELIVERED, record))
            records.append((audit_kinds.ACK, {"alert_id": alert_id, "mid": mid}))
            self._delivery[alert_id] = AT_BROKER
            if not self.require_dispatch_ack:
                acked.append(alert_id)
        if acked:
            self.outbox.ack(acked)
            for alert_id in acked:
                self._resend.pop(alert_id, None)
                self._delivery.pop(alert_id, None)
            self._more_to_send = True
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

    def _settle_dispatch_acks(self) -> None:
        if not self._dispatch_acks:
            return
        acks, self._dispatch_acks = self._dispatch_acks, []
        ids = [alert_id for ack in acks for alert_id in ack.alert_ids]
        removed = self.outbox.ack(ids)
        for alert_id in ids:
            self._resend.pop(alert_id, None)
            self._delivery.pop(alert_id, None)
        self.dispatch_acked += removed
        self._more_to_send = True
        self._audit(
            [
                (audit_kinds.DISPATCH_ACK, {"alert_ids": list(ack.alert_ids), "by": ack.by})
                for ack in acks
            ]
        )

    def _forget_connection(self) -> None:
        # Not another id's alert: a broker that refuses those may close the connection for it
        # (Mosquitto 2.0 does, in MQTT 5); sent again at once, it would close the next one.
        lost = [a for a, device_id in self._inflight.values() if device_id == self.device.id]
        self._inflight.clear()
        self._sent_held.clear()
        self._listening.clear()
        self._subscribing.clear()
        if self.require_dispatch_ack:
            # Alerts the broker had acknowledged keep their resend times; those whose PUBACK
            # never came go again at once.
            now = time.monotonic()
            for alert_id in lost:
                if alert_id in self._resend:
                    self._reschedule(alert_id, now)
        else:
            self._cursor = 0
            self._resend.clear()
            self._resend_heap.clear()

    def _shutdown(self) -> None:
        """Still connected, stopping: a last heartbeat (the final numbers of a run shorter than
        a heartbeat period would otherwise never leave), 'offline', then let in-flight alerts be
        acknowledged."""
        if self._heartbeat:
            self._publish_heartbeat()
        if self._publish_status:
            self._client.publish(
                self.topics.status,
                status_payload(self.device.id, self._status, "offline", "shutdown"),
                qos=1,
                retain=True,
            )
        deadline = time.monotonic() + self._drain_timeout
        while self._inflight and time.monotonic() < deadline:
            if self._client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            self._settle_acks()

    # --- paho callbacks (run on the loop thread, inside Client.loop) ---------------------------

    def _on_connect(
        self, client: paho.Client, session_present: bool, properties: Properties | None
    ) -> None:
        # The outbox is the queue: paho must not resend its own copies on this connection.
        dropped = client.drop_out_messages()
        if dropped:
            log.debug("dropped %d messages of the previous connection", len(dropped))
        self._forget_connection()
        self._more_to_send = True
        window = self.mqtt.max_inflight
        receive_maximum = getattr(properties, "ReceiveMaximum", None) if properties else None
        if isinstance(receive_maximum, int) and receive_maximum > 0:
            window = min(window, receive_maximum)
        self._window = window
        try:
            counts = self.outbox.device_counts()
            others = self.former_ids.summary(counts)
            depth = f"{sum(counts.values())} alerts waiting in the outbox"
            depth += f" ({others})" if others else ""
        except EdgeError as exc:
            log.error("%s", exc)
            depth = "an unknown number of alerts waiting in the outbox"
        log.info(
            "connected to MQTT broker %s as %s (MQTT %s, session present: %s); %s",
            self.broker,
            self.client_id,
            self.mqtt.protocol,
            session_present,
            depth,
        )
        if self._publish_status:
            self._publish_online()
        self._listen(self.device.id)
        self._last_heartbeat = 0.0

    def _listen(self, device_id: str) -> None:
        """Subscribe to the ack and review topics of ``device_id`` (per connection)."""
        self._listening.add(device_id)
        topics = DeviceTopics(self.mqtt.topic_prefix, device_id)
        wanted = [(topics.review, 1)] if self._subscribe_reviews else []
        wanted += [(topics.ack, 1)] if self._subscribe_acks else []
        if not wanted:
            return
        rc, mid = self._client.subscribe(wanted)
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None and device_id != self.device.id:
            self._subscribing[mid] = device_id

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        log.debug("disconnected from %s: %s", self.broker, reason)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        device_id = self._subscribing.pop(mid, None)
        if device_id is None:
            self._on_any_subscribe(client, userdata, mid, reasons, properties)
            return
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            self.former_ids.refused(device_id, str(refused[0]))

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._acks.append((mid, reason))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # Ours, or another id's: of alerts queued under an earlier device.id (_listen).
        kind = (parse_device_topic(message.topic, self.mqtt.topic_prefix) or ("", ""))[1]
        if kind == "ack":
            ack = self._decode(message, decode_ack, audit_kinds.ACK_INVALID)
            if ack is not None:
                self._dispatch_acks.append(ack)
            return
        if kind != "review":
            return
        review = self._decode(message, decode_review, audit_kinds.REVIEW_INVALID)
        if review is None:
            return
        log.info(
            "review received: alert %s %s by %s",
            review.alert_id,
            review.decision,
            review.by or "(unnamed)",
        )
        self._audit([(audit_kinds.REVIEW, review.as_dict())])
        if self._on_review is not None:
            try:
                self._on_review(review)
            except Exception:
                log.exception("review handler failed for alert %s", review.alert_id)

    def _decode(
        self, message: paho.MQTTMessage, decode: Callable[[bytes], T], invalid: str
    ) -> T | None:
        """The decoded message, or None (logged and audited as ``invalid``) if malformed."""
        try:
            return decode(bytes(message.payload))
        except EdgeError as exc:
            excerpt = message.payload[:200].decode("utf-8", "replace")
            log.warning("ignoring a malformed message on %s: %s", message.topic, exc)
            self._audit(
                [(invalid, {"topic": message.topic, "error": str(exc), "excerpt": excerpt})]
            )
            return None

    # --- payloads --------------------------------------------------------------------------------

    def _publish_online(self) -> None:
        payload = status_payload(self.device.id, self._status, "online")
        self._client.publish(self.topics.status, payload, qos=1, retain=True)

    def _publish_heartbeat(self) -> None:
        document: dict[str, Any] = {}
        if self._stats_provider is not None:
            try:
                document.update(self._stats_provider())
            except Exception:
                log.exception("heartbeat stats provider failed")
        document.update(
            {
                "device_id": self.device.id,
                "time": utc_rfc3339(),
                "uptime_s": round(time.monotonic() - self._started_at, 1),
                "outbox": self.outbox.stats().as_dict(),
                "mqtt": {
                    "connections": self.connections,
                    "sent": self.sent,
                    "acked": self.acked,
                    "inflight": len(self._inflight),
                    "undelivered": self.undelivered,
                    "dispatch_acked": self.dispatch_acked,
                    "awaiting_ack": len(self._resend),
                },
            }
        )
        self._heads.report(document)
        payload = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
        # Retained, so `edge hub devices` shows the last one of every device.
        self._client.publish(self.topics.heartbeat, payload.encode("utf-8"), qos=0, retain=True)

    def _audit(self, records: list[tuple[str, Mapping[str, Any]]]) -> None:
        if self.audit is not None:
            self.audit.append_or_log(records)
