"""Alerts queued under a device id other than today's ``device.id``: what the device says of them.

An alert's ``device_id`` is evidence of which device saw the person, so it is never rewritten,
and dispatch takes an alert only from its own device's topic. When ``device.id`` changes while
alerts wait in the outbox, the publisher therefore sends each of them as the id it was made
under, on that id's topics (:mod:`edge.alerts.publisher`). This module words what the operator
sees about it: a warning at start, the connect line's count, and, when the broker's ACL refuses
this device an old id's topics, an error naming the fix (or, where the broker cannot say so, a
warning when such alerts go unacknowledged), repeated at most every ``REPEAT_S`` per id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from edge.mqtt.topics import DeviceTopics

log = logging.getLogger(__name__)

REPEAT_S = 600.0  # the same complaint about one id, at most this often (the longest resend wait)


class FormerIds:
    """The device ids of queued alerts that are not ``device_id``; ``broker`` names the broker."""

    def __init__(self, prefix: str, device_id: str, broker: str) -> None:
        self.prefix = prefix
        self.device_id = device_id
        self.broker = broker
        # id -> when the broker's refusal (or, without one, the guess) was last logged
        self._refused_at: dict[str, float] = {}
        self._guessed_at: dict[str, float] = {}

    def summary(self, counts: Mapping[str, int]) -> str:
        """'1 queued as edge-0' for the outbox's per-device ``counts`` ('' if none)."""
        return ", ".join(
            f"{count} queued as {device}"
            for device, count in sorted(counts.items())
            if device != self.device_id
        )

    def operator_fix(self, device_id: str) -> str:
        topics = DeviceTopics(self.prefix, device_id)
        return (
            f"let this device's MQTT user publish on {topics.alert} and subscribe to "
            f"{topics.ack} and {topics.review} until `edge outbox status` shows none left as "
            f"{device_id}, or send them with {device_id}'s broker credentials "
            "(`edge outbox flush --config FILE`)"
        )

    def warn_at_start(self, counts: Mapping[str, int]) -> None:
        for device, count in sorted(counts.items()):
            if device == self.device_id:
                continue
            log.warning(
                "the outbox holds %d alert(s) queued as %s; device.id is now %s: they are sent "
                "as %s, on its topics, and acknowledged there (an alert's device_id is never "
                "rewritten). If the broker lets this device publish only as %s: %s",
                count,
                device,
                self.device_id,
                device,
                self.device_id,
                self.operator_fix(device),
            )

    @staticmethod
    def _due(said: dict[str, float], device_id: str) -> bool:
        """Whether a complaint logged in ``said`` may be logged again now (and note it)."""
        now = time.monotonic()
        if now - said.get(device_id, float("-inf")) < REPEAT_S:
            return False
        said[device_id] = now
        return True

    def refused(self, device_id: str, reason: str) -> None:
        """The broker refused a publish or subscription on ``device_id``'s topics: an error
        (the alerts stay in the outbox and are sent again)."""
        if not self._due(self._refused_at, device_id):
            return
        log.error(
            "broker %s refused this device the topics of %s (%s), under which alerts in the "
            "outbox were made: they stay there and are sent again; %s",
            self.broker,
            device_id,
            reason,
            self.operator_fix(device_id),
        )

    def unacknowledged(self, device_id: str, attempt: int) -> None:
        """Alerts queued as ``device_id`` are being sent again: no dispatch ack came. A broker
        that drops what its ACL forbids says nothing in MQTT 3.1.1 (MQTT 5 says 'Not
        authorized'), so this is the one sign: a warning."""
        recently_refused = time.monotonic() - self._refused_at.get(device_id, float("-inf"))
        if recently_refused < REPEAT_S or not self._due(self._guessed_at, device_id):
            return
        log.warning(
            "alerts queued as %s are sent again (attempt %d): no dispatch ack came. If `edge "
            "dispatch serve` is running, the broker drops them or their acks: %s",
            device_id,
            attempt,
            self.operator_fix(device_id),
        )
