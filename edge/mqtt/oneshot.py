"""Short-lived MQTT clients for tools (``edge alerts tail``, ``edge hub ...``, ``edge doctor``).

Unlike :class:`edge.mqtt.connection.Connection` these let paho run its own network thread
(``loop_start``) and fail at once with a :class:`BrokerError` instead of retrying: a person is
waiting for the answer.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.mqtt import MqttConfig
from edge.errors import BrokerError
from edge.mqtt.connection import (
    broker_address,
    connect_client,
    describe_connect_error,
    describe_refusal,
    make_client,
)

SUBACK_TIMEOUT_S = 10.0
RETAINED_WAIT_S = 1.0  # how long to wait for a retained message after the SUBACK

MessageHandler = Callable[[paho.Client, Any, paho.MQTTMessage], None]


def tool_client(mqtt: MqttConfig, role: str) -> paho.Client:
    """A clean-session client with a random id, using the device's broker, TLS and credentials."""
    return make_client(mqtt, f"edge-{role}-{secrets.token_hex(4)}", persistent_session=False)


def connect_and_wait(client: paho.Client, mqtt: MqttConfig) -> None:
    """Connect, start paho's thread and wait for CONNACK; :class:`BrokerError` says why not."""
    broker = broker_address(mqtt)
    outcome: list[ReasonCode] = []
    ready = threading.Event()

    def on_connect(
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        outcome.append(reason)
        ready.set()

    client.on_connect = on_connect
    try:
        connect_client(client, mqtt, persistent_session=False)
    except (OSError, ValueError) as exc:
        raise BrokerError(
            f"cannot connect to MQTT broker {broker}: {describe_connect_error(exc, mqtt)}"
        ) from exc
    client.loop_start()
    if not ready.wait(mqtt.connect_timeout_s):
        client.loop_stop()
        raise BrokerError(f"MQTT broker {broker} did not answer within {mqtt.connect_timeout_s:g}s")
    if outcome[0].is_failure:
        close(client)
        raise BrokerError(
            f"MQTT broker {broker} refused the connection: {describe_refusal(outcome[0])}"
        )


def close(client: paho.Client) -> None:
    client.disconnect()
    client.loop_stop()


def subscribe_and_wait(
    client: paho.Client, topics: Sequence[tuple[str, int]], timeout_s: float = SUBACK_TIMEOUT_S
) -> None:
    """Subscribe (the client is connected, loop running) and wait for the SUBACK."""
    subscribed = threading.Event()

    def on_subscribe(
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        subscribed.set()

    client.on_subscribe = on_subscribe
    client.subscribe(list(topics))
    if not subscribed.wait(timeout_s):
        raise BrokerError(f"no SUBACK for {', '.join(t for t, _ in topics)} within {timeout_s:g}s")


def subscriber_client(mqtt: MqttConfig, topic: str, on_message: MessageHandler) -> paho.Client:
    """A connected client subscribed (QoS 1, SUBACK received) to ``topic``; loop running."""
    client = tool_client(mqtt, "sub")
    client.on_message = on_message
    connect_and_wait(client, mqtt)
    try:
        subscribe_and_wait(client, [(topic, 1)], mqtt.connect_timeout_s)
    except BrokerError:
        close(client)
        raise
    return client


def read_retained(client: paho.Client, topic: str, wait_s: float = RETAINED_WAIT_S) -> bytes | None:
    """The retained message on ``topic`` (the client is connected, loop running), or None."""
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if message.topic == topic and message.retain:
            got.append(bytes(message.payload))
            arrived.set()

    client.on_message = on_message
    subscribe_and_wait(client, [(topic, 1)])
    arrived.wait(wait_s)
    client.unsubscribe(topic)
    client.on_message = None
    return got[-1] if got else None


def wait_published(infos: Sequence[paho.MQTTMessageInfo], timeout_s: float, what: str) -> None:
    """Wait until the broker acknowledged every one of ``infos`` (QoS >= 1)."""
    deadline = time.monotonic() + timeout_s
    for info in infos:
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise BrokerError(f"publishing {what} failed: {paho.error_string(info.rc)}")
        left = deadline - time.monotonic()
        try:
            info.wait_for_publish(max(left, 0.001))
        except (RuntimeError, ValueError) as exc:
            raise BrokerError(f"publishing {what} failed: {exc}") from exc
        if not info.is_published():
            raise BrokerError(f"the broker did not acknowledge {what} within {timeout_s:g}s")
