"""Watchlist alerts over MQTT that are never lost.

An alert (:class:`edge.alerts.model.Alert`) is validated once against ``alert-v1.schema.json``
(:mod:`edge.alerts.schema`) when it is made, committed to a durable SQLite outbox
(:mod:`edge.alerts.outbox`), published at QoS 1 and deleted only once the broker acknowledges
that very message (:mod:`edge.alerts.publisher`, on the shared connection
of :mod:`edge.mqtt.connection`). Every step is written to the hash-chained audit log
(:mod:`edge.audit`). :class:`edge.alerts.service.AlertService` bundles them.
"""
