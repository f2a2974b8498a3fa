"""The operating system around edge: systemd readiness and watchdog (:mod:`sdnotify`),
SIGINT/SIGTERM (:mod:`signals`), bounded reads of untrusted files and JSON (:mod:`inputs`),
native libraries' stderr (:mod:`native`)."""
