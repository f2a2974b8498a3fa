"""What dispatch sends back to a device: acks (it stored these alerts) and review decisions.

Per connection, the publisher subscribes to ``<prefix>/<device>/ack`` and ``.../review`` of its
own device id, and of each id its queued alerts were made under (:mod:`edge.alerts.former_ids`)
before the first of those alerts goes out: an ack must find the device subscribed. A malformed
message is logged and audited (``ack_invalid``, ``review_invalid``) and otherwise ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge import audit as audit_kinds
from edge.alerts.delivery import AuditSink
from edge.alerts.former_ids import FormerIds
from edge.alerts.model import Ack, Review
from edge.errors import EdgeError
from edge.mqtt.topics import DeviceTopics, parse_device_topic

# The name these lines always had: operators and their log filters know it.
log = logging.getLogger("edge.alerts.publisher")
T = TypeVar("T")


class DispatchReplies:
    """The ack and review subscriptions of one connection, and their messages.

    ``reviews`` and ``acks`` say which of the two to subscribe to; ``on_ack`` gets every valid
    ack, ``on_review`` (if any) every valid review, both on the loop thread."""

    def __init__(
        self,
        client: paho.Client,
        prefix: str,
        device_id: str,
        former_ids: FormerIds,
        *,
        reviews: bool,
        acks: bool,
        on_ack: Callable[[Ack], None],
        on_review: Callable[[Review], None] | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.device_id = device_id
        self.former_ids = former_ids
        self._reviews = reviews
        self._acks = acks
        self._on_ack = on_ack
        self._on_review = on_review
        self.audit = audit
        # Device ids whose ack/review topics this connection subscribed to (ours and those of
        # alerts queued under an earlier device.id), and other ids' subscriptions awaiting SUBACK.
        self._listening: set[str] = set()
        self._subscribing: dict[int, str] = {}

    def forget(self) -> None:
        """The connection ended: its subscriptions (clean session) and their ids are gone."""
        self._listening.clear()
        self._subscribing.clear()

    def ensure(self, device_id: str) -> None:
        """Subscribed to ``device_id``'s topics on this connection (before its alerts go)."""
        if device_id not in self._listening:
            self.listen(device_id)

    def listen(self, device_id: str) -> None:
        """Subscribe to the ack and review topics of ``device_id`` (per connection)."""
        self._listening.add(device_id)
        topics = DeviceTopics(self.prefix, device_id)
        wanted = [(topics.review, 1)] if self._reviews else []
        wanted += [(topics.ack, 1)] if self._acks else []
        if not wanted:
            return
        rc, mid = self.client.subscribe(wanted)
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None and device_id != self.device_id:
            self._subscribing[mid] = device_id

    def suback(self, mid: int, reasons: list[ReasonCode]) -> bool:
        """Whether SUBACK ``mid`` was for another id's topics (then handled here)."""
        device_id = self._subscribing.pop(mid, None)
        if device_id is None:
            return False
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            self.former_ids.refused(device_id, str(refused[0]))
        return True

    def on_message(self, message: paho.MQTTMessage) -> None:
        # Ours, or another id's: of alerts queued under an earlier device.id (listen).
        kind = (parse_device_topic(message.topic, self.prefix) or ("", ""))[1]
        if kind == "ack":
            ack = self._decode(message, Ack.decode, audit_kinds.ACK_INVALID)
            if ack is not None:
                self._on_ack(ack)
            return
        if kind != "review":
            return
        review = self._decode(message, Review.decode, audit_kinds.REVIEW_INVALID)
        if review is None:
            return
        log.info(
            "review received: alert %s %s by %s",
            review.alert_id,
            review.decision,
            review.by or "(unnamed)",
        )
        if self.audit is not None:
            self.audit.append_or_log([(audit_kinds.REVIEW, review.as_dict())])
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
            if self.audit is not None:
                record = {"topic": message.topic, "error": str(exc), "excerpt": excerpt}
                self.audit.append_or_log([(invalid, record)])
            return None
