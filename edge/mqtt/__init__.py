"""MQTT, shared by every feature that talks to a broker: a foundation.

- :mod:`edge.mqtt.connection`: client set-up (protocol, TLS, credentials) and the one reconnect
  loop with backoff, for long-lived clients.
- :mod:`edge.mqtt.service`: :class:`MqttService`, such a client on its own thread (start, stop,
  connected, alive, last error): the alert publisher, dispatch's ingest and watchlist sync.
- :mod:`edge.mqtt.topics`: the one place topic strings are built and parsed.
- :mod:`edge.mqtt.oneshot`: connect-or-fail helpers for command-line tools.
"""
