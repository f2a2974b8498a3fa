"""Fleet and device operations.

- :mod:`edge.fleet.protocol`: topics, the retained announcement, packing a bundle into chunks.
- :mod:`edge.fleet.sync`: the device side: follow lists, fetch chunks, verify, install, report.
- :mod:`edge.fleet.hub`: the hub side: publish a bundle, list the devices.
- :mod:`edge.fleet.agent`: ``edge sync``, the device's management process (sync, local API,
  systemd watchdog).
- :mod:`edge.fleet.sdnotify`: readiness and watchdog keep-alives for systemd.
- :mod:`edge.fleet.profiles`: device profiles + site config -> one config file.

This package imports nothing at load time: :mod:`edge.config` imports its config section.
"""
