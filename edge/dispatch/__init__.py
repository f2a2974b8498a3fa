"""Dispatch: the centre's side of the alert loop (``edge dispatch``).

It receives every device's alerts, status and heartbeats over MQTT (``ingest``), stores them
once each in SQLite or PostgreSQL (``store``, migrations in ``migrations/``), acknowledges each
stored alert to its device, and serves the web console and API where a person reviews every hit
(``web``, ``views``, ``api``; accounts, roles and sessions in ``auth``). ``importer`` loads a
list's entry details and reference thumbnails, which never go to devices.

Built on the features (``alerts`` for the schemas, ``watchlist`` for bundles); nothing below
imports it. The long-running process is wired in :mod:`edge.services.dispatch`.
"""
