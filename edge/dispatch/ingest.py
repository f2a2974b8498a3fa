"""The MQTT side of dispatch: every device's alerts, status and heartbeats in; acks and reviews out.

Everything runs on one thread, an :class:`edge.mqtt.service.MqttService` (THE reconnect loop):
paho's callbacks only collect, and :meth:`Ingest.after_loop` commits.

    broker --alert--> on_message (validate) --> pending batch --commit--> database
                                                                  |--> PUBACK to the broker
                                                                  +--> ack on <device>/ack
    console --review--> queue --> publish <device>/review (QoS 1) --PUBACK--> marked sent

Alerts are committed in batches (``dispatch.batch_max`` or ``batch_wait_ms``, whichever comes
first). Only after the commit does dispatch PUBACK the messages to the broker (manual acks) and
publish the end-to-end ack to each device, which then deletes them from its outbox. A process
that dies before its commit has acknowledged nothing: the broker (persistent session) or the
device (its resend) brings the alerts again. With PostgreSQL several processes subscribe as one
MQTT 5 shared-subscription group, so each alert goes to one of them; status and heartbeats go to
every process (each stores them; the result is the same).

A review is stored before it is published; reviews whose PUBACK never came are published again
(from the database) after a reconnect, so a decision reaches its device even across a dispatch
restart, if later.
"""

from __future__ import annotations

import logging
import queue
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.alerts.model import Ack, Review
from edge.alerts.schema import MAX_ACK_IDS
from edge.clock import utc_rfc3339
from edge.config import Config
from edge.dispatch.received import Received, received
from edge.dispatch.rows import ReviewRow
from edge.dispatch.store import Store
from edge.errors import EdgeError
from edge.mqtt.service import MqttService
from edge.mqtt.topics import DeviceTopics, every_device, parse_device_topic, shared
from edge.system.inputs import load_json

log = logging.getLogger(__name__)

_IDLE_LOOP_S = 0.05
_RESEND_REVIEWS_S = 10.0  # look for reviews whose PUBACK never came this often
_COMMIT_RETRY_S = 1.0


def default_client_id(config: Config) -> str:
    """Stable across restarts, distinct for every process on one machine (each its own port)."""
    return (
        config.dispatch.client_id or f"edge-dispatch-{socket.gethostname()}-{config.dispatch.port}"
    )


class Ingest(MqttService):
    """One serve process's MQTT connection. ``on_stored(n)`` runs after each commit."""

    what_stays = "devices send unacknowledged alerts again"

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        password: str | None = None,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(
            config.mqtt,
            default_client_id(config),
            persistent_session=config.mqtt.persistent_session,
            thread_name="dispatch-mqtt",
            password=password,
            name="dispatch",
            subscriptions="shared subscriptions need MQTT 5; the ACL must let dispatch read "
            f"{every_device(config.mqtt.topic_prefix, 'alert')}, status and heartbeat",
        )
        self.config = config
        self.dispatch = config.dispatch
        self.prefix = config.mqtt.topic_prefix
        self.store = store
        mode = self.dispatch.shared_subscription
        self.shared = mode == "on" or (mode == "auto" and store.shared)
        if self.shared and config.mqtt.protocol != "5":
            log.warning("shared subscriptions need MQTT 5 (mqtt.protocol): subscribing plainly")
            self.shared = False
        self.on_stored = on_stored
        # PUBACK an alert only once it is committed (paho acks on return otherwise).
        self.client.manual_ack_set(True)
        self._reviews: queue.Queue[ReviewRow] = queue.Queue()
        # Loop-thread state.
        self._pending: list[Received] = []
        self._pending_mids: list[int] = []
        self._first_pending = 0.0
        self._retry_commit_at = 0.0
        self._review_mids: dict[int, int] = {}  # message id -> review id
        self._last_review_scan = 0.0
        # Counters (monitoring).
        self.received = 0
        self.stored = 0
        self.invalid = 0
        self.acks_sent = 0
        self.reviews_sent = 0

    # --- any thread ------------------------------------------------------------------------------

    def send_review(self, review: ReviewRow) -> None:
        """Publish a stored review (confirm/reject) to its device, from the loop thread."""
        self._reviews.put(review)

    # --- the loop thread -------------------------------------------------------------------------

    def loop_timeout(self) -> float:
        busy = bool(self._pending) or not self._reviews.empty()
        return 0.0 if busy else _IDLE_LOOP_S

    def after_loop(self, ok: bool) -> None:
        now = time.monotonic()
        if self._pending and now >= self._retry_commit_at:
            full = len(self._pending) >= self.dispatch.batch_max
            waited = (now - self._first_pending) * 1000.0 >= self.dispatch.batch_wait_ms
            if full or waited or not ok:
                self._commit()

    def tick(self) -> None:
        self._publish_reviews()
        now = time.monotonic()
        if now - self._last_review_scan >= _RESEND_REVIEWS_S:
            self._last_review_scan = now
            for review in self.store.unsent_reviews(older_than_s=_RESEND_REVIEWS_S):
                if review.id not in self._review_mids.values():
                    self._reviews.put(review)

    def _commit(self) -> None:
        batch, mids = self._pending, self._pending_mids
        try:
            self.store.ingest(batch)
        except EdgeError as exc:
            # Nothing is acknowledged: retry; the broker holds back further alerts meanwhile.
            log.error("%s; retrying in %gs", exc, _COMMIT_RETRY_S)
            self._retry_commit_at = time.monotonic() + _COMMIT_RETRY_S
            return
        self._pending, self._pending_mids = [], []
        self.stored += len(batch)
        for mid in mids:
            self.client.ack(mid, 1)
        by_device: dict[str, list[str]] = defaultdict(list)
        for item in batch:
            if item.alert_id not in by_device[item.device_id]:
                by_device[item.device_id].append(item.alert_id)
        stamp = utc_rfc3339()
        for device_id, ids in by_device.items():
            topic = DeviceTopics(self.prefix, device_id).ack
            for start in range(0, len(ids), MAX_ACK_IDS):
                chunk = tuple(ids[start : start + MAX_ACK_IDS])
                payload = Ack(chunk, by=self.client_id, time=stamp).encode()
                self.client.publish(topic, payload, qos=1)
                self.acks_sent += 1
        if self.on_stored is not None:
            self.on_stored(len(batch))

    def _publish_reviews(self) -> None:
        while True:
            try:
                row = self._reviews.get_nowait()
            except queue.Empty:
                return
            review = Review(
                alert_id=row.alert_id,
                # Only TO_DEVICE decisions are queued (do_review, unsent_reviews); the model
                # validates it again.
                decision=cast(Literal["confirm", "reject"], row.decision),
                by=row.by_user[:128],
                time=utc_rfc3339(_utc(row.at)),
                note=None if row.note is None else row.note[:2000],
            )
            topic = DeviceTopics(self.prefix, row.device_id).review
            info = self.client.publish(topic, review.encode(), qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.debug("review %s not sent now (%s): sent again later", row.id, info.rc)
                return
            self._review_mids[info.mid] = row.id

    def on_lost(self) -> None:
        # Message ids of the lost connection mean nothing now: the alerts already received are
        # still committed (and acknowledged to their devices on the next connection).
        self._pending_mids = []
        self._review_mids.clear()

    def shutdown(self) -> None:
        if self._pending:
            self._commit()
        self.drain(lambda: bool(self._review_mids), 2.0)

    # --- paho callbacks (loop thread) ----------------------------------------------------------

    def on_connected(
        self, client: paho.Client, session_present: bool, properties: Properties | None
    ) -> None:
        alerts = every_device(self.prefix, "alert")
        if self.shared:
            alerts = shared(self.dispatch.share_group, alerts)
        client.subscribe(
            [
                (alerts, 1),
                (every_device(self.prefix, "status"), 1),
                (every_device(self.prefix, "heartbeat"), 1),
            ]
        )
        self._last_review_scan = 0.0  # publish what is still unsent at once
        log.info(
            "dispatch connected to MQTT broker %s as %s (session present: %s); alerts on %s",
            self.broker,
            self.client_id,
            session_present,
            alerts,
        )

    def on_publish(self, mid: int, reason: ReasonCode) -> None:
        review_id = self._review_mids.pop(mid, None)
        if review_id is None:
            return
        if reason.is_failure:
            log.error("broker %s refused review %d: %s", self.broker, review_id, reason)
            return
        try:
            self.store.review_sent(review_id)
            self.reviews_sent += 1
        except EdgeError as exc:
            log.error("%s (the review is sent again later)", exc)

    def on_message(self, message: paho.MQTTMessage) -> None:
        parsed = parse_device_topic(message.topic, self.prefix)
        if parsed is None:
            self._ack_now(message)
            return
        device_id, kind = parsed
        if kind == "alert":
            self._take_alert(device_id, message)
            return
        self._ack_now(message)
        try:
            document = load_json(bytes(message.payload) or b"null")
        except ValueError:
            document = None
        if not isinstance(document, dict):
            if message.payload:
                log.warning(
                    "ignoring a %s message on %s that is not a JSON object", kind, message.topic
                )
            return
        now = time.time()
        try:
            if kind == "status":
                self.store.device_status(device_id, document, now)
            elif kind == "heartbeat":
                problem = self.store.device_heartbeat(device_id, document, now)
                if problem is not None:
                    log.warning("device %s: %s", device_id, problem)
        except EdgeError as exc:
            log.error("%s", exc)

    def _take_alert(self, device_id: str, message: paho.MQTTMessage) -> None:
        self.received += 1
        try:
            item = received(bytes(message.payload))
            if item.device_id != device_id:
                raise EdgeError(
                    f"alert for device {item.device_id} arrived on {message.topic}: refused"
                )
        except EdgeError as exc:
            self.invalid += 1
            log.warning("ignoring an invalid alert on %s: %s", message.topic, exc)
            self._ack_now(message)
            return
        if not self._pending:
            self._first_pending = time.monotonic()
        self._pending.append(item)
        if message.qos > 0:
            self._pending_mids.append(message.mid)

    def _ack_now(self, message: paho.MQTTMessage) -> None:
        if message.qos > 0:
            self.client.ack(message.mid, message.qos)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
