"""A real Mosquitto broker for tests: plain, password-protected, or TLS (with generated certs).

Loaded by tests/conftest.py. Tests that take the ``mosquitto`` fixture are skipped with a clear
reason when the ``mosquitto`` binary is absent (Debian package ``mosquitto``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
OPENSSL = shutil.which("openssl")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path  # a CA that signed nothing here: a "bad CA" for the client


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def make_tls_files(directory: Path) -> TlsFiles:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    if OPENSSL is None:
        pytest.skip("openssl is not installed: cannot generate TLS certificates")
    directory.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "other-ca"):
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            f"{ca}.key",
            "-out",
            f"{ca}.pem",
            "-days",
            "2",
            "-subj",
            f"/CN=edge test {ca}",
            cwd=directory,
        )
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN=edge test {name}",
            cwd=directory,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            cwd=directory,
        )
    return TlsFiles(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca_cert=directory / "other-ca.pem",
    )


class Mosquitto:
    """One broker process on a fixed free loopback port; stop() and start() keep the port."""

    def __init__(
        self,
        work_dir: Path,
        *,
        users: dict[str, str] | None = None,
        tls: TlsFiles | None = None,
        require_client_cert: bool = False,
        persistence: bool = False,
        acl: dict[str, list[str]] | None = None,
    ) -> None:
        """``acl``: per user, the topic patterns it may read and write (all others denied)."""
        assert MOSQUITTO is not None
        self.work_dir = work_dir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = work_dir / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            # No per-client limits: a test subscriber must be able to fall behind by 1,000+.
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # mosquitto otherwise drops to 'mosquitto', losing files
        if persistence:
            lines += [
                "persistence true",
                f"persistence_location {work_dir}/",
                "autosave_interval 1",
            ]
        else:
            lines.append("persistence false")
        if users is None:
            lines.append("allow_anonymous true")
        else:
            assert MOSQUITTO_PASSWD is not None
            password_file = work_dir / "passwords"
            password_file.write_text("")
            for user, password in users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(password_file), user, password],
                    check=True,
                    capture_output=True,
                )
            password_file.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        if acl is not None:
            acl_file = work_dir / "acl"
            acl_file.write_text(
                "".join(
                    f"user {user}\n" + "".join(f"topic readwrite {t}\n" for t in topics)
                    for user, topics in acl.items()
                )
            )
            lines.append(f"acl_file {acl_file}")
        if tls is not None:
            lines += [
                f"cafile {tls.ca_cert}",
                f"certfile {tls.server_cert}",
                f"keyfile {tls.server_key}",
                f"require_certificate {'true' if require_client_cert else 'false'}",
            ]
        self.conf_path = work_dir / "mosquitto.conf"
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 10.0) -> None:
        assert self.process is None, "already running"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(self.conf_path)], stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log_tail()}")

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (saves persistence) or SIGKILL, and wait for the process to end."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _require_mosquitto() -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto'; .ci/run installs it)")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running anonymous broker, stopped after the test."""
    _require_mosquitto()
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def persistent_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """Like ``mosquitto`` but keeps sessions and queued messages across stop()/start()."""
    _require_mosquitto()
    broker = Mosquitto(tmp_path / "broker", persistence=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class BrokerFactory:
    """Builds (not starts) brokers with other settings; all are stopped after the test."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.brokers: list[Mosquitto] = []

    def __call__(
        self,
        name: str,
        *,
        users: dict[str, str] | None = None,
        tls: TlsFiles | None = None,
        require_client_cert: bool = False,
        persistence: bool = False,
        acl: dict[str, list[str]] | None = None,
    ) -> Mosquitto:
        broker = Mosquitto(
            self.base_dir / name,
            users=users,
            tls=tls,
            require_client_cert=require_client_cert,
            persistence=persistence,
            acl=acl,
        )
        self.brokers.append(broker)
        return broker


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    _require_mosquitto()
    factory = BrokerFactory(tmp_path)
    try:
        yield factory
    finally:
        for broker in factory.brokers:
            broker.stop()
