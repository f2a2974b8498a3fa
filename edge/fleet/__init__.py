"""Fleet operations: carrying signed watchlist bundles from the hub to every device over MQTT.

Built on :mod:`edge.watchlist` (it moves that package's bundles, and checks their signatures
before fetching them), so it sits one layer above the features (docs/architecture.md).

- :mod:`edge.fleet.protocol`: the retained announcement, packing a bundle into chunks.
- :mod:`edge.fleet.transfer`: what to fetch (pure planning) and the transfer on disk.
- :mod:`edge.fleet.sync`: the device side: follow lists, fetch chunks, install, report.
- :mod:`edge.fleet.hub`: the hub side: publish a bundle, list the devices.
- :mod:`edge.fleet.profiles`: device profiles + site config -> one config file.
"""
