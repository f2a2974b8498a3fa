"""The MQTT connection: client set-up (protocol, TLS, credentials) and THE reconnect loop.

Every long-lived MQTT user (the alert publisher, dispatch's ingest, watchlist sync) is an
:class:`edge.mqtt.service.MqttService`, which owns one :class:`Connection` and runs
:meth:`Connection.run` on its own thread with a ``step`` function. ``step`` drives
``Client.loop()`` itself, so every paho callback runs on that same thread and the owner's state
needs no lock. A connection that cannot be opened, is refused or is lost is retried after a
delay that doubles from ``mqtt.reconnect_min_s`` up to ``mqtt.reconnect_max_s``, with jitter so
that a fleet does not reconnect in lock-step.

Library errors are turned into one line naming the setting to fix where they enter
(:func:`describe_connect_error`, :func:`describe_refusal`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.mqtt import MqttConfig
from edge.config.secrets import read_secret
from edge.errors import BrokerError, EdgeError

log = logging.getLogger(__name__)

PASSWORD_SECRET = "mqtt_password"
ERROR_PAUSE_S = 1.0  # after an unexpected error in a step, before the next one


def make_client(
    mqtt: MqttConfig,
    client_id: str,
    *,
    persistent_session: bool,
    password: str | None = None,
) -> paho.Client:
    """A configured (not yet connected) paho client; raises :class:`BrokerError` for bad TLS.

    ``password`` defaults to the ``mqtt_password`` secret (systemd credential or environment).
    """
    if password is None:
        password = read_secret(PASSWORD_SECRET)
    v5 = mqtt.protocol == "5"
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        # MQTT 5 has clean_start (given on connect) instead; paho refuses clean_session there.
        clean_session=None if v5 else not persistent_session,
        protocol=protocol,
    )
    client.connect_timeout = mqtt.connect_timeout_s
    # Room for status messages on top of the alerts window, so paho never holds alerts back.
    client.max_inflight_messages_set(mqtt.max_inflight + 8)
    if mqtt.username is not None:
        if password is None:
            log.warning(
                "mqtt.username is set but no password was found (systemd credential %r or "
                "$EDGE_%s); connecting without one",
                PASSWORD_SECRET,
                PASSWORD_SECRET.upper(),
            )
        client.username_pw_set(mqtt.username, password)
    if mqtt.tls is not None:
        tls = mqtt.tls
        for what, path in (
            ("ca_file", tls.ca_file),
            ("cert_file", tls.cert_file),
            ("key_file", tls.key_file),
        ):
            if path is not None and not path.is_file():
                raise BrokerError(f"mqtt.tls.{what} {path} does not exist or is not a file")
        try:
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=None if tls.cert_file is None else str(tls.cert_file),
                keyfile=None if tls.key_file is None else str(tls.key_file),
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise BrokerError(f"cannot load the TLS files in mqtt.tls: {exc}") from exc
        client.tls_insecure_set(not tls.verify_hostname)
    return client


def connect_client(client: paho.Client, mqtt: MqttConfig, *, persistent_session: bool) -> None:
    """Open the connection (blocking: TCP, TLS handshake, CONNECT sent; CONNACK comes later)."""
    if mqtt.protocol == "5":
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = mqtt.session_expiry_s if persistent_session else 0
        client.connect(
            mqtt.host,
            mqtt.effective_port,
            mqtt.keepalive_s,
            clean_start=not persistent_session,
            properties=properties,
        )
    else:
        client.connect(mqtt.host, mqtt.effective_port, mqtt.keepalive_s)


def broker_address(mqtt: MqttConfig) -> str:
    return f"{mqtt.host}:{mqtt.effective_port}"


def describe_connect_error(exc: BaseException, mqtt: MqttConfig) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate check failed ({text}): check mqtt.tls.ca_file and mqtt.host"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({text}): check mqtt.tls and that the port speaks TLS"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused ({text}): is the broker running on that port?"
    if isinstance(exc, TimeoutError):
        return f"timed out after {mqtt.connect_timeout_s:g}s"
    return text


def describe_refusal(reason: ReasonCode) -> str:
    name = str(reason)
    hint = ""
    if reason.value in (4, 5, 0x86, 0x87):
        hint = f" (check mqtt.username and the {PASSWORD_SECRET} credential)"
    elif reason.value in (2, 0x85):
        hint = " (check mqtt.client_id)"
    return f"{name}{hint}"


class Connection:
    """A paho client, its connect attempts and the reconnect backoff, driven by one thread.

    ``name`` prefixes the log lines of this connection (e.g. 'watchlist sync');
    ``subscriptions`` says, in a refused subscription's log line, what will then not arrive and
    what to check. Both callbacks
    run on the loop thread: ``on_connected(client, session_present, properties)`` once the
    broker accepted the connection (subscribe, publish status, ...; :attr:`connected` is set
    when it returns), and ``on_lost()`` whenever the connection or an attempt ends, so the owner
    can forget what belonged to it (in-flight message ids, subscriptions of a clean session).
    """

    def __init__(
        self,
        mqtt: MqttConfig,
        client_id: str,
        *,
        persistent_session: bool,
        password: str | None = None,
        name: str = "",
        on_connected: Callable[[paho.Client, bool, Properties | None], None],
        on_lost: Callable[[], None] | None = None,
        subscriptions: str = "",
    ) -> None:
        self.mqtt = mqtt
        self.client_id = client_id
        self.persistent_session = persistent_session
        self.broker = broker_address(mqtt)
        self.client = make_client(
            mqtt, client_id, persistent_session=persistent_session, password=password
        )
        self.stopping = threading.Event()
        self.connected = threading.Event()  # CONNACK accepted, not lost since
        self.socket_open = False
        self.connections = 0
        self.last_error: str | None = None
        self._prefix = f"{name}: " if name else ""
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._subscriptions = subscriptions
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self._failures = 0
        self._refused = False

    def run(self, step: Callable[[], None], shutdown: Callable[[], None] | None = None) -> None:
        """Until :attr:`stopping` is set: connect (backing off), else ``step()``; then
        ``shutdown()`` (while still connected) and disconnect. Runs on the owner's thread."""
        while not self.stopping.is_set():
            try:
                if not self.socket_open:
                    self._connect_once()
                    continue
                step()
            except EdgeError as exc:
                # E.g. a database locked for longer than its timeout: say so, go on.
                self.last_error = str(exc)
                log.error("%s%s; retrying in %gs", self._prefix, exc, ERROR_PAUSE_S)
                self.stopping.wait(ERROR_PAUSE_S)
            except Exception:
                log.exception("%sunexpected error; retrying in %gs", self._prefix, ERROR_PAUSE_S)
                self.stopping.wait(ERROR_PAUSE_S)
        if not self.socket_open:
            return
        if shutdown is not None and self.connected.is_set():
            shutdown()
        with contextlib.suppress(Exception):
            self.client.disconnect()
            self.client.loop(timeout=0.1)
        self.connected.clear()
        self.socket_open = False

    def _connect_once(self) -> None:
        try:
            connect_client(self.client, self.mqtt, persistent_session=self.persistent_session)
        except (OSError, ValueError) as exc:
            self.last_error = describe_connect_error(exc, self.mqtt)
            self._backoff(
                f"{self._prefix}cannot connect to MQTT broker {self.broker}: {self.last_error}"
            )
            return
        self.socket_open = True

    def _backoff(self, why: str, level: int = logging.WARNING) -> None:
        delay = min(self.mqtt.reconnect_max_s, self.mqtt.reconnect_min_s * 2**self._failures)
        delay *= random.uniform(0.5, 1.0)  # jitter: a fleet must not reconnect in lock-step
        self._failures = min(self._failures + 1, 30)
        log.log(level, "%s; retrying in %.2fs", why, delay)
        self.stopping.wait(delay)

    def ended(self, rc: MQTTErrorCode, what_stays: str = "") -> None:
        """``Client.loop()`` returned ``rc`` (not success): the connection or attempt is over.
        Back off before the next attempt; ``what_stays`` tells the log what survives a loss."""
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.socket_open = False
        if self._on_lost is not None:
            self._on_lost()
        error = paho.error_string(rc)
        if was_connected:
            self.last_error = f"connection lost ({error})"
            self._failures = 0
            note = f"; {what_stays}" if what_stays else ""
            self._backoff(
                f"{self._prefix}lost connection to MQTT broker {self.broker} ({error}){note}"
            )
            return
        refused, self._refused = self._refused, False
        self._backoff(
            f"{self._prefix}MQTT broker {self.broker} {self.last_error or error}",
            logging.ERROR if refused else logging.WARNING,
        )

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            # Logged once, with the retry delay, when loop() reports the refusal.
            self.last_error = f"refused the connection: {describe_refusal(reason)}"
            self._refused = True
            return
        self._failures = 0
        self.connections += 1
        self.last_error = None
        self._on_connected(client, flags.session_present, properties)
        self.connected.set()

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error(
                    "%sbroker %s refused a subscription: %s (%s)",
                    self._prefix,
                    self.broker,
                    reason,
                    self._subscriptions or "check the broker's ACL for this client",
                )
