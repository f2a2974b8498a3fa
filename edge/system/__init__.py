"""The operating system around edge: systemd readiness and watchdog (:mod:`sdnotify`),
SIGINT/SIGTERM (:mod:`signals`) and the machine checks of ``edge doctor`` (:mod:`doctor`)."""
