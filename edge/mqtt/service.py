"""A long-lived MQTT client on its own thread: the lifecycle every such client shares.

The alert publisher, dispatch's ingest and watchlist sync are each an :class:`MqttService`: they
say what to subscribe to (:meth:`MqttService.on_connected`), what to do with a message or a
PUBACK, and what to do between two ``Client.loop()`` calls; this class owns the rest: the
thread, :class:`edge.mqtt.connection.Connection` (THE reconnect loop with backoff), start and
stop, and what monitoring reads (connected, alive, last error).

One step of the thread::

    Client.loop(loop_timeout())  # paho callbacks run here, on this thread
    after_loop(ok)               # settle what the callbacks collected (also when it failed)
    not ok -> Connection.ended() # back off, reconnect
    connected -> tick()          # send, poll, publish

Every callback and hook runs on that one thread, so a service's state needs no lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config.mqtt import MqttConfig
from edge.mqtt.connection import Connection

_DRAIN_LOOP_S = 0.05


class MqttService:
    """One MQTT connection driven by one daemon thread named ``thread_name``.

    ``name`` and ``subscriptions`` go to :class:`Connection` (its log lines); subclasses
    override the hooks below, all called on the thread."""

    # What survives a lost connection, for its log line ('' says nothing).
    what_stays = ""

    def __init__(
        self,
        mqtt: MqttConfig,
        client_id: str,
        *,
        persistent_session: bool,
        thread_name: str,
        password: str | None = None,
        name: str = "",
        subscriptions: str = "",
    ) -> None:
        self.mqtt = mqtt
        self.client_id = client_id
        self._thread_name = thread_name
        self._connection = Connection(
            mqtt,
            client_id,
            persistent_session=persistent_session,
            password=password,
            name=name,
            on_connected=self.on_connected,
            on_lost=self.on_lost,
            subscriptions=subscriptions,
        )
        self.broker = self._connection.broker
        self.client = self._connection.client
        self.client.on_message = self._paho_message
        self.client.on_publish = self._paho_publish
        self._thread: threading.Thread | None = None

    # --- the lifecycle, any thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._connection.run,
            args=(self._run_step, self.shutdown),
            name=self._thread_name,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.stop_thread(self.mqtt.connect_timeout_s + 10.0)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop_thread(self, join_timeout_s: float) -> None:
        """Tell the thread to stop (it runs :meth:`shutdown` if connected, then disconnects)
        and wait for it up to ``join_timeout_s``."""
        self._connection.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=join_timeout_s)
            self._thread = None

    @property
    def started(self) -> bool:
        """:meth:`start` was called (and :meth:`stop` not since)."""
        return self._thread is not None

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

    # --- hooks, on the thread (override) ---------------------------------------------------------

    def on_connected(
        self, client: paho.Client, session_present: bool, properties: Properties | None
    ) -> None:
        """The broker accepted the connection: subscribe, publish status, ..."""

    def on_lost(self) -> None:
        """The connection (or an attempt) ended: forget what belonged to it."""

    def on_message(self, message: paho.MQTTMessage) -> None:
        """A message on one of this service's subscriptions."""

    def on_publish(self, mid: int, reason: ReasonCode) -> None:
        """The broker's PUBACK (QoS 1) for message id ``mid``."""

    def loop_timeout(self) -> float:
        """How long the next ``Client.loop()`` may wait for the network."""
        return _DRAIN_LOOP_S

    def after_loop(self, ok: bool) -> None:
        """After each ``Client.loop()``; ``ok`` is False when the connection just ended."""

    def tick(self) -> None:
        """After each ``Client.loop()`` while connected: the service's own work."""

    def shutdown(self) -> None:
        """Stopping, still connected: the last words (status, a final commit, ...)."""

    # --- helpers for hooks -----------------------------------------------------------------------

    def drain(
        self,
        pending: Callable[[], bool],
        timeout_s: float,
        settle: Callable[[], None] | None = None,
    ) -> None:
        """Keep looping (``settle()`` after each) while ``pending()`` and for at most
        ``timeout_s``, or until the connection ends: for :meth:`shutdown`'s PUBACKs."""
        deadline = time.monotonic() + timeout_s
        while pending() and time.monotonic() < deadline:
            if self.client.loop(timeout=_DRAIN_LOOP_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            if settle is not None:
                settle()

    # --- the thread ------------------------------------------------------------------------------

    def _run_step(self) -> None:
        rc = self.client.loop(timeout=self.loop_timeout())
        ok = rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        self.after_loop(ok)
        if not ok:
            self._connection.ended(rc, self.what_stays)
            return
        if self.connected:
            self.tick()

    def _paho_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.on_message(message)

    def _paho_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.on_publish(mid, reason)
