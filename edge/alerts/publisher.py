"""The device's MQTT connection for alerts: the outbox drained into it, dispatch's acks and
reviews out of it, and the device's retained status, last will and heartbeat on it.

:class:`AlertPublisher` wires four parts onto one :class:`edge.mqtt.service.MqttService`
(a thread that drives ``Client.loop()`` itself, so every callback runs on it and no state needs
a lock: a PUBACK can never be handled before the publish it acknowledges was recorded):

- :class:`edge.alerts.delivery.Delivery`: which alerts to send now (window, resends) and what
  each acknowledgement means: when an alert leaves the outbox;
- :class:`edge.alerts.replies.DispatchReplies`: the ack and review subscriptions;
- :class:`edge.alerts.presence.Presence`: the retained status, its last will, the heartbeat;
- :class:`edge.alerts.former_ids.FormerIds`: what the operator is told about alerts queued
  under an earlier ``device.id``, which go out on that id's topics (an alert's ``device_id`` is
  evidence and is never rewritten; dispatch takes an alert only from its own device's topic).

Per connection: on CONNACK paho's own queue of unacknowledged messages is dropped (the outbox is
the queue), and alerts are published from the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.alerts.delivery import (
    AT_BROKER,
    NO_SUBSCRIBER,
    REFUSED,
    SENT,
    Delivery,
    DeliveryRules,
    PubAck,
)
from edge.alerts.former_ids import FormerIds
from edge.alerts.model import Review
from edge.alerts.outbox import Outbox, OutboxItem
from edge.alerts.presence import DeviceStatus, Presence, StatsProvider
from edge.alerts.replies import DispatchReplies
from edge.audit import AuditLog, HeartbeatHeads
from edge.config.alerts import AlertsConfig
from edge.config.device import DeviceConfig
from edge.config.mqtt import MqttConfig
from edge.errors import EdgeError
from edge.mqtt.service import MqttService
from edge.mqtt.topics import DeviceTopics

__all__ = ["AT_BROKER", "NO_SUBSCRIBER", "REFUSED", "SENT", "AlertPublisher", "DeviceStatus"]

log = logging.getLogger(__name__)
SubscribeCallback = Callable[[paho.Client, Any, int, list[ReasonCode], Properties | None], None]

_IDLE_LOOP_S = 0.05


class AlertPublisher(MqttService):
    """Keeps one MQTT connection up and drains an :class:`Outbox` into it.

    ``publish_status`` (retained status, last will) and ``subscribe_reviews`` belong to the
    device's service; tools such as ``edge alerts test`` turn them off so they do not overwrite
    the device's status.
    """

    what_stays = "unacknowledged alerts stay in the outbox and are resent on reconnect"

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
        stats_provider: StatsProvider | None = None,
        on_review: Callable[[Review], None] | None = None,
        alerts: AlertsConfig | None = None,
        subscribe_acks: bool | None = None,
    ) -> None:
        content = alerts or AlertsConfig.model_validate({})
        client_id = (mqtt.client_id or f"edge-{device.id}") + client_id_suffix
        super().__init__(
            mqtt,
            client_id,
            persistent_session=(
                mqtt.persistent_session if persistent_session is None else persistent_session
            ),
            thread_name=f"mqtt-{client_id}",
            password=password,
            subscriptions="review decisions and dispatch acks will not arrive; check the "
            "broker's ACL for this device's review and ack topics",
        )
        self.require_dispatch_ack = content.require_dispatch_ack
        self.device = device
        self.outbox = outbox
        self.audit = audit
        self.topics = DeviceTopics(mqtt.topic_prefix, device.id)
        self.former_ids = FormerIds(mqtt.topic_prefix, device.id, self.broker)
        self.delivery = Delivery(
            outbox,
            DeliveryRules(
                content.require_dispatch_ack,
                content.dispatch_ack_timeout_s,
                content.dispatch_ack_max_interval_s,
            ),
            device_id=device.id,
            window=mqtt.max_inflight,
            former_ids=self.former_ids,
            broker=self.broker,
            audit=audit,
        )
        self.replies = DispatchReplies(
            self.client,
            mqtt.topic_prefix,
            device.id,
            self.former_ids,
            reviews=subscribe_reviews,
            acks=self.require_dispatch_ack if subscribe_acks is None else subscribe_acks,
            on_ack=self.delivery.dispatch_ack,
            on_review=on_review,
            audit=audit,
        )
        self.presence = Presence(
            self.client,
            self.topics,
            HeartbeatHeads(audit, continuing=publish_status),
            publish_status=publish_status,
            heartbeat=heartbeat,
            status=status,
            stats_provider=stats_provider,
        )
        # The service's handler logs a refused subscription; other ids' are handled here.
        self._on_any_subscribe = cast(SubscribeCallback, self.client.on_subscribe)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self._wake = threading.Event()
        self._drain_timeout = 2.0

    # --- public, any thread --------------------------------------------------------------------

    def start(self) -> None:
        if self.started:
            return
        try:
            self.former_ids.warn_at_start(self.outbox.device_counts())
        except EdgeError as exc:
            log.error("%s", exc)
        super().start()

    def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Publish 'offline' (if this publisher owns the status), let in-flight alerts be
        acknowledged for up to ``drain_timeout_s``, disconnect. Unacknowledged alerts stay in the
        outbox."""
        self._drain_timeout = drain_timeout_s
        self.stop_thread(drain_timeout_s + self.mqtt.connect_timeout_s + 5.0)

    def wake(self) -> None:
        """Look at the outbox now (called by :meth:`Outbox.enqueue`)."""
        self._wake.set()

    def set_status(self, status: DeviceStatus) -> None:
        """Report new model or watchlist versions: the retained status is republished."""
        self.presence.set_status(status)
        self._wake.set()

    # Counters and states, read by other threads (ints: atomic enough for monitoring).
    @property
    def sent(self) -> int:
        return self.delivery.sent

    @property
    def acked(self) -> int:
        """Broker PUBACKs that said success."""
        return self.delivery.acked

    @property
    def undelivered(self) -> int:
        """PUBACKs that said "no matching subscribers"."""
        return self.delivery.undelivered

    @property
    def dispatch_acked(self) -> int:
        """Alerts removed by dispatch's acks."""
        return self.delivery.dispatch_acked

    @property
    def awaiting_dispatch(self) -> int:
        """Alerts sent and not yet acknowledged (by dispatch, or by the broker in plain mode)."""
        return self.delivery.awaiting_ack

    def delivery_of(self, alert_ids: Iterable[str]) -> dict[str, int]:
        """See :meth:`Delivery.delivery_of`."""
        return self.delivery.delivery_of(alert_ids)

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

    def wait_empty(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.outbox.stats().total:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    # --- the loop thread (MqttService hooks) ---------------------------------------------------

    def loop_timeout(self) -> float:
        return 0.0 if self._wake.is_set() else _IDLE_LOOP_S

    def after_loop(self, ok: bool) -> None:
        self.delivery.settle_pubacks()
        self.delivery.settle_dispatch_acks()

    def tick(self) -> None:
        now = time.monotonic()
        woken = self._wake.is_set()
        if woken:
            self._wake.clear()
        self.delivery.tick(woken)
        self.presence.status_changed()
        if self.delivery.more_to_send:
            self.delivery.fill_window(self._send, self.connections)
        if self.presence.heartbeat_due(now, self.mqtt.heartbeat_s):
            self._publish_heartbeat()

    def _send(self, item: OutboxItem) -> int | None:
        self.replies.ensure(item.device_id)  # before the alert: its ack must find us subscribed
        topic = DeviceTopics(self.mqtt.topic_prefix, item.device_id).alert
        info = self.client.publish(topic, item.payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("publish of alert %s not sent: %s", item.alert_id, info.rc)
            return None
        return info.mid

    def shutdown(self) -> None:
        """Still connected, stopping: a last heartbeat (the final numbers of a run shorter than
        a heartbeat period would otherwise never leave), 'offline', then let in-flight alerts be
        acknowledged."""
        if self.presence.heartbeat:
            self._publish_heartbeat()
        self.presence.publish_offline()
        self.drain(
            lambda: bool(self.delivery.inflight), self._drain_timeout, self.delivery.settle_pubacks
        )

    def on_lost(self) -> None:
        self.delivery.lost()
        self.replies.forget()

    def on_connected(
        self, client: paho.Client, session_present: bool, properties: Properties | None
    ) -> None:
        # The outbox is the queue: paho must not resend its own copies on this connection.
        dropped = client.drop_out_messages()
        if dropped:
            log.debug("dropped %d messages of the previous connection", len(dropped))
        receive_maximum = getattr(properties, "ReceiveMaximum", None) if properties else None
        self.delivery.connected(receive_maximum if isinstance(receive_maximum, int) else None)
        self.replies.forget()
        log.info(
            "connected to MQTT broker %s as %s (MQTT %s, session present: %s); %s",
            self.broker,
            self.client_id,
            self.mqtt.protocol,
            session_present,
            self._outbox_depth(),
        )
        self.presence.connected()
        self.replies.listen(self.device.id)

    def _outbox_depth(self) -> str:
        try:
            counts = self.outbox.device_counts()
        except EdgeError as exc:
            log.error("%s", exc)
            return "an unknown number of alerts waiting in the outbox"
        others = self.former_ids.summary(counts)
        depth = f"{sum(counts.values())} alerts waiting in the outbox"
        return depth + (f" ({others})" if others else "")

    def on_message(self, message: paho.MQTTMessage) -> None:
        self.replies.on_message(message)

    def on_publish(self, mid: int, reason: ReasonCode) -> None:
        self.delivery.puback(PubAck(mid, reason.value, str(reason)))

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if not self.replies.suback(mid, reasons):
            self._on_any_subscribe(client, userdata, mid, reasons, properties)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        log.debug("disconnected from %s: %s", self.broker, reason)

    def _publish_heartbeat(self) -> None:
        delivery = self.delivery
        stats: Mapping[str, Any] = {
            "connections": self.connections,
            "sent": delivery.sent,
            "acked": delivery.acked,
            "inflight": delivery.inflight,
            "undelivered": delivery.undelivered,
            "dispatch_acked": delivery.dispatch_acked,
            "awaiting_ack": delivery.awaiting_ack,
        }
        self.presence.publish_heartbeat(self.outbox.stats().as_dict(), stats)
