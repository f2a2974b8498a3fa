"""systemd readiness and watchdog keep-alives (``sd_notify``), without a dependency.

Under a unit with ``Type=notify`` systemd sets ``$NOTIFY_SOCKET``; with ``WatchdogSec=`` it also
sets ``$WATCHDOG_USEC``. Call :meth:`Notifier.ready` once the service works and
:meth:`Notifier.watchdog` from the main loop: it sends ``WATCHDOG=1`` at most every half period,
so a main loop that hangs stops the keep-alives and systemd restarts the service. Outside
systemd every call does nothing.

    notifier = Notifier.from_environment()
    notifier.ready("syncing gate")
    while running:
        ...
        notifier.watchdog()
    notifier.stopping()
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.interval_s = watchdog_usec / 1e6 if watchdog_usec else None
        self._last_ping = 0.0
        self._warned = False

    @classmethod
    def from_environment(cls) -> Notifier:
        address = os.environ.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        raw = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if raw and raw.isdigit() and (pid is None or pid == str(os.getpid())):
            usec = int(raw)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        """Send one datagram to the notify socket; False (logged once) if that fails."""
        if self.address is None:
            return False
        target = self.address
        if target.startswith("@"):  # an abstract socket
            target = "\0" + target[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                sock.sendall(message.encode("utf-8"))
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        message = "READY=1"
        if status:
            message += f"\nSTATUS={status}"
        return self.send(message)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self, force: bool = False) -> bool:
        """Keep-alive: sends ``WATCHDOG=1`` if half the watchdog period has passed."""
        if self.interval_s is None:
            return False
        now = time.monotonic()
        if not force and now - self._last_ping < self.interval_s / 2:
            return False
        self._last_ping = now
        return self.send("WATCHDOG=1")

    @property
    def ping_every_s(self) -> float:
        """How often the main loop must at least wake up to keep the watchdog fed."""
        return self.interval_s / 4 if self.interval_s else 1.0
