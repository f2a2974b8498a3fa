"""MQTT, shared by every feature that talks to a broker: a foundation.

- :mod:`edge.mqtt.connection`: client set-up (protocol, TLS, credentials) and the one reconnect
  loop with backoff, for long-lived clients.
- :mod:`edge.mqtt.topics`: the one place topic strings are built and parsed.
- :mod:`edge.mqtt.oneshot`: connect-or-fail helpers for command-line tools.
"""
