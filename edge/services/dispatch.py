"""``edge dispatch serve``: the database, the MQTT ingest, the live feed and the web app.

    broker ==> Ingest (MQTT thread) --commit--> Store <-- web app (uvicorn thread pool)
                  |  ack, review ==> broker        |             ^
                  +--wake--> Feed (poll thread) ---+--events-----+ (SSE to every console)

The database and its migrations come first, so a bad URL fails before anything listens; then
the main thread binds the console's port (a taken port or bad TLS files: one line, before
anything connects to MQTT), starts them in that order, reports READY to systemd, feeds its
watchdog while every thread lives and stops on SIGINT/SIGTERM: the feed first (open live lists
end), then the web server, then the ingest, which commits and acknowledges what it holds
before it disconnects.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
from pathlib import Path

from edge.audit import AuditLog
from edge.config import Config
from edge.dispatch.auth import Accounts
from edge.dispatch.deps import Deps
from edge.dispatch.feed import Feed
from edge.dispatch.ingest import Ingest
from edge.dispatch.store import Store
from edge.dispatch.web import create_app
from edge.errors import DispatchError
from edge.system.sdnotify import Notifier
from edge.system.signals import stop_on_signals

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_THREAD_DIED = 1


_LISTEN_HINT = "choose another address with --listen HOST:PORT (dispatch.host, dispatch.port)"


def _bind_problem(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    if exc.errno == errno.EADDRINUSE:
        return "the address is in use (another `edge dispatch serve`, or another program?)"
    if exc.errno == errno.EACCES:
        return "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "that host is not an address of this machine"
    return exc.strerror or str(exc)


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket for the console; :class:`DispatchError` (one line naming
    --listen) if it cannot be had, before anything else connects anywhere."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise DispatchError(
            f"cannot serve the console on {host}:{port}: {_bind_problem(exc)}; {_LISTEN_HINT}"
        ) from exc
    try:
        # As uvicorn does: a restarted serve rebinds at once, though old connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise DispatchError(
            f"cannot serve the console on {host}:{port}: {_bind_problem(exc)}; {_LISTEN_HINT}"
        ) from exc
    return sock


class WebServer:
    """uvicorn on a thread (the owner handles signals), on a socket bound by :meth:`bind`."""

    def __init__(self, deps: Deps, host: str, port: int) -> None:
        import uvicorn

        tls = deps.config.tls
        self.host, self.port = host, port
        self.config = uvicorn.Config(
            create_app(deps),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
            ssl_certfile=None if tls is None else str(tls.cert_file),
            ssl_keyfile=None if tls is None else str(tls.key_file),
        )
        self.server = uvicorn.Server(self.config)
        self.url = f"{'https' if tls else 'http'}://{host}:{port}"
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> None:
        """Take the port and load the TLS files: the errors a console can have, said in one
        line before the ingest connects to MQTT (uvicorn would print its own and exit)."""
        if self._socket is not None:
            return
        self._socket = listen_socket(self.host, self.port)
        try:
            self.config.load()
        except (OSError, ssl.SSLError) as exc:
            self.close_socket()
            raise DispatchError(
                f"cannot load the console's TLS files (dispatch.tls): {exc}"
            ) from exc

    def start(self, timeout_s: float = 10.0) -> None:
        self.bind()
        sockets = [self._socket] if self._socket is not None else None
        self._thread = threading.Thread(
            target=self.server.run, args=(sockets,), name="dispatch-web", daemon=True
        )
        self._thread.start()
        waited = threading.Event()
        for _ in range(int(timeout_s / 0.02)):
            if self.server.started:
                return
            if not self._thread.is_alive():
                break
            waited.wait(0.02)
        raise DispatchError(f"the dispatch console did not start on {self.url}")

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.close_socket()

    def close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class DispatchServer:
    def __init__(
        self, config: Config, *, state_dir: Path | None = None, password: str | None = None
    ) -> None:
        self.config = config
        paths = config.paths(state_dir)
        self.store = Store(paths.dispatch_db)
        self.audit = AuditLog(paths.dispatch_audit, fsync=config.audit.fsync)
        self.accounts = Accounts(self.store, config.dispatch)
        self.feed = Feed(self.store)
        self.ingest = Ingest(config, self.store, password=password, on_stored=self.feed.wake)
        self.deps = Deps(
            store=self.store,
            accounts=self.accounts,
            config=config.dispatch,
            audit=self.audit,
            feed=self.feed,
            send_review=self.ingest.send_review,
        )
        self.web = WebServer(self.deps, config.dispatch.host, config.dispatch.port)
        self._stop = threading.Event()
        self._notifier = Notifier.from_environment()

    def start(self) -> None:
        self.web.bind()  # a taken port is said before anything connects to MQTT
        self.feed.start()
        self.ingest.start()
        self.web.start()
        log.info(
            "dispatch serving %s (database %s; %s users); MQTT %s as %s%s",
            self.web.url,
            self.store.where,
            self.accounts.user_count(),
            self.ingest.broker,
            self.ingest.client_id,
            ", shared subscription" if self.ingest.shared else "",
        )
        if not self.accounts.user_count():
            log.warning(
                "no user yet: add one with `edge dispatch users add NAME --role supervisor`"
            )

    def stop(self) -> None:
        self._stop.set()
        self.feed.stop()
        self.web.stop()
        self.ingest.stop()
        self.audit.close()
        self.store.close()

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (exit 0) or until a thread dies (exit 1)."""
        restore = stop_on_signals(lambda name: self._stop.set())
        code = EXIT_OK
        try:
            self.start()
            self._notifier.ready(f"serving {self.web.url}")
            while not self._stop.wait(1.0):
                if not (self.web.alive and self.ingest.alive):
                    log.error("a dispatch thread stopped; exiting so that it is restarted")
                    code = EXIT_THREAD_DIED
                    break
                self._notifier.watchdog()
        finally:
            self._notifier.stopping()
            self.stop()
            restore()
        return code
