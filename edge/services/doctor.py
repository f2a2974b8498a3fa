"""The machine checks behind ``edge doctor``: can this machine run edge, and how to fix it.

Checks: CPU features, cores, memory, camera access, model hashes, backend speed, broker
reachability, clock sync, disk space for the outbox (the watchlist key check is added by
:mod:`edge.cli.doctor`, since it needs the watchlist). Each gives ``ok``, ``warn`` or ``fail``
with a detail and, unless ok, a fix.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from edge.config import Config
from edge.errors import EdgeError

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
EMBED_OK_MS = 60.0  # one face through the embedder; a Pi 4 (4 threads) measures ~25-40 ms
EMBED_WARN_MS = 250.0
CLOCK_FLOOR = datetime(2025, 1, 1, tzinfo=UTC)  # before this the clock was never set
MIN_FREE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    result: str
    detail: str
    fix: str = ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# --- the checks ---------------------------------------------------------------------------------


def check_cpu(config: Config) -> Check:
    machine = platform.machine().lower()
    info = _read("/proc/cpuinfo")
    flags: set[str] = set()
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    if machine in ("x86_64", "amd64"):
        if {"avx2", "fma"} <= flags:
            return Check("cpu", OK, f"{machine} with AVX2 and FMA")
        if "avx" in flags:
            return Check(
                "cpu",
                WARN,
                f"{machine} with AVX but no AVX2/FMA: inference runs on slower kernels",
                "expect lower fps; consider embedder.precision fp32 and detector short_range",
            )
        return Check(
            "cpu",
            WARN,
            f"{machine} without AVX: inference will be slow",
            "use a CPU with AVX2 (any x86 from 2013 on), or lower capture.max_fps",
        )
    if machine in ("aarch64", "arm64"):
        if "asimd" not in flags and "neon" not in flags:
            return Check(
                "cpu",
                FAIL,
                f"{machine} without NEON/ASIMD",
                "edge needs a 64-bit ARM CPU with NEON (Raspberry Pi 4/5, Jetson)",
            )
        extra = " and dot product (int8 is fast)" if "asimddp" in flags else ""
        return Check("cpu", OK, f"{machine} with NEON{extra}")
    return Check(
        "cpu",
        WARN,
        f"untested architecture {machine}",
        "edge is tested on x86_64 and aarch64; run `edge bench speed` to see what it does",
    )


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_cores(config: Config) -> Check:
    cores = _cores()
    threads = config.run.inference_threads or config.runtime.threads
    if cores < 2:
        return Check(
            "cores",
            WARN,
            "1 core: capture, inference and alerting share it",
            "use a machine with 2 or more cores; set runtime.threads: 1",
        )
    if threads > cores:
        return Check(
            "cores",
            WARN,
            f"{cores} cores available, runtime.threads is {threads}",
            f"set runtime.threads to {max(1, cores - 1)} or fewer",
        )
    return Check("cores", OK, f"{cores} cores available, {threads} inference threads")


def check_memory(config: Config) -> Check:
    fields: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0]) * 1024
    total, available = fields.get("MemTotal"), fields.get("MemAvailable")
    if total is None or available is None:
        return Check("memory", WARN, "cannot read /proc/meminfo", "run on Linux")
    text = f"{available / 2**30:.1f} GiB available of {total / 2**30:.1f} GiB"
    if available < 256 * 2**20:
        return Check(
            "memory", FAIL, text, "edge run needs about 300 MB: stop other services or add RAM"
        )
    if available < 512 * 2**20:
        return Check("memory", WARN, text, "little headroom: large watchlists need more")
    return Check("memory", OK, text)


def check_camera(config: Config) -> Check:
    source = config.capture.source
    if source is None:
        return Check(
            "camera",
            WARN,
            "capture.source is not set (edge run without --source plays the demo)",
            "set capture.source, e.g. /dev/video0 or an rtsp:// URL (see firmware-config)",
        )
    if source.isdigit() or source.startswith("/dev/"):
        path = Path(f"/dev/video{source}" if source.isdigit() else source)
        if not path.exists():
            videos = sorted(str(p) for p in Path("/dev").glob("video*"))
            return Check(
                "camera",
                FAIL,
                f"{path} does not exist (video devices: {', '.join(videos) or 'none'})",
                "plug the camera in, enable it (Pi: camera_auto_detect=1), or fix capture.source",
            )
        try:
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        except PermissionError:
            return Check(
                "camera",
                FAIL,
                f"no permission to open {path}",
                "add the service user to the 'video' group (the unit does: "
                "SupplementaryGroups=video)",
            )
        except OSError as exc:
            return Check("camera", FAIL, f"cannot open {path}: {exc.strerror}", "check the camera")
        os.close(fd)
        return Check("camera", OK, f"{path} opens")
    parts = urlsplit(source)
    if parts.scheme in ("rtsp", "rtsps", "rtmp", "http", "https"):
        default = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}
        host = parts.hostname or ""
        port = parts.port or default[parts.scheme]
        where = f"{parts.scheme}://{host}:{port}"  # never the credentials
        try:
            with socket.create_connection((host, port), timeout=3.0):
                pass
        except OSError as exc:
            return Check(
                "camera",
                FAIL,
                f"cannot reach {where}: {exc.strerror or exc}",
                "check the camera's address, power and network",
            )
        return Check("camera", OK, f"{where} accepts connections")
    if Path(source).exists():
        return Check("camera", OK, f"{source} exists (a file or folder source)")
    return Check("camera", FAIL, f"{source} does not exist", "fix capture.source")


def check_models(config: Config) -> Check:
    from edge.models import catalog, verified_path

    try:
        for name in sorted(catalog()):
            verified_path(name)
    except EdgeError as exc:
        return Check(
            "models", FAIL, str(exc), "reinstall the package: pip install --force-reinstall edge"
        )
    return Check("models", OK, f"{len(catalog())} shipped model files match their sha256")


def check_backend(config: Config) -> Check:
    import numpy as np

    from edge.backends import open_session
    from edge.models import EMBEDDING_MODEL

    backend, threads = config.runtime.backend, config.runtime.threads
    try:
        session = open_session(EMBEDDING_MODEL, backend, threads, config.embedder.precision)
        h, w = session.input_hw
        batch = np.zeros((1, h, w, 3), dtype=np.float32)
        session.run(batch)  # warm-up
        times = []
        for _ in range(5):
            started = time.perf_counter()
            session.run(batch)
            times.append((time.perf_counter() - started) * 1000)
    except EdgeError as exc:
        return Check(
            "backend",
            FAIL,
            str(exc),
            "install the runtime (pip install onnxruntime / ai-edge-litert) or change "
            "runtime.backend",
        )
    ms = sorted(times)[len(times) // 2]
    text = f"{backend} {config.embedder.precision}, {threads} threads: {ms:.1f} ms per face"
    if ms > EMBED_WARN_MS:
        return Check(
            "backend",
            FAIL,
            text,
            "far too slow: check the CPU governor (performance), thermal throttling, or try "
            "the other backend (`edge bench speed`)",
        )
    if ms > EMBED_OK_MS:
        return Check(
            "backend",
            WARN,
            text,
            "slow: try embedder.precision int8, detector.model short_range or the other "
            "backend (`edge bench speed`)",
        )
    return Check("backend", OK, text)


def check_broker(config: Config) -> Check:
    from edge.mqtt.oneshot import close, connect_and_wait, tool_client

    mqtt = config.mqtt
    where = f"{mqtt.host}:{mqtt.effective_port}" + (" (TLS)" if mqtt.tls else "")
    started = time.monotonic()
    try:
        client = tool_client(mqtt, "doctor")
        connect_and_wait(client, mqtt)
    except EdgeError as exc:
        return Check(
            "broker",
            FAIL,
            str(exc),
            "check mqtt.host/port, that the broker runs and the firewall lets the port through, "
            "mqtt.username and the mqtt_password credential, mqtt.tls.ca_file",
        )
    close(client)
    return Check(
        "broker", OK, f"{where} accepted us in {(time.monotonic() - started) * 1000:.0f} ms"
    )


def check_clock(config: Config, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Check:
    moment = now()
    if moment < CLOCK_FLOOR:
        return Check(
            "clock",
            FAIL,
            f"the clock says {moment:%Y-%m-%d}: it was never set",
            "enable time sync (systemd-timesyncd or chrony) and let it reach an NTP server; "
            "watchlists are refused outside their validity window",
        )
    synced: bool | None = None
    how = ""
    timedatectl = shutil.which("timedatectl")
    if timedatectl:
        try:
            out = subprocess.run(
                [timedatectl, "show", "--property=NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=3,
            )
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                synced, how = out.stdout.strip() == "yes", "timedatectl"
        except (OSError, subprocess.TimeoutExpired):
            pass
    if synced is None and Path("/run/systemd/timesync/synchronized").exists():
        synced, how = True, "systemd-timesyncd"
    if synced is None:
        return Check(
            "clock",
            WARN,
            f"clock set ({moment:%Y-%m-%d %H:%M}Z) but synchronisation cannot be checked here",
            "make sure NTP runs (timedatectl, chronyc tracking)",
        )
    if not synced:
        return Check(
            "clock",
            FAIL,
            f"not synchronised ({how})",
            "enable NTP: timedatectl set-ntp true (check that UDP 123 is allowed)",
        )
    return Check("clock", OK, f"synchronised ({how})")


def check_disk(config: Config, state_dir: Path) -> Check:
    probe = state_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe != state_dir:
        creatable = os.access(probe, os.W_OK)
        if not creatable:
            return Check(
                "disk",
                FAIL,
                f"state directory {state_dir} does not exist and cannot be created",
                f"create it for the service user (the unit's StateDirectory= does): "
                f"install -d -o edge {state_dir}",
            )
    elif not os.access(state_dir, os.W_OK):
        return Check(
            "disk",
            FAIL,
            f"state directory {state_dir} is not writable",
            f"chown it to the service user: chown -R edge {state_dir}",
        )
    free = shutil.disk_usage(probe).free
    need = config.outbox.max_bytes + MIN_FREE_BYTES
    text = f"{free / 2**30:.1f} GiB free for {state_dir}; the outbox may use {need / 2**20:.0f} MiB"
    if free < MIN_FREE_BYTES:
        return Check("disk", FAIL, text, "free space, or move state_dir to a larger disk")
    if free < need:
        return Check(
            "disk",
            WARN,
            text,
            f"lower outbox.max_bytes below {max(free - MIN_FREE_BYTES, 0) / 2**20:.0f} MiB or "
            "free space: otherwise a long broker outage fills the disk",
        )
    return Check("disk", OK, text)


CHECKS: dict[str, Callable[[Config, Path], Check]] = {
    "cpu": lambda c, s: check_cpu(c),
    "cores": lambda c, s: check_cores(c),
    "memory": lambda c, s: check_memory(c),
    "camera": lambda c, s: check_camera(c),
    "models": lambda c, s: check_models(c),
    "backend": lambda c, s: check_backend(c),
    "broker": lambda c, s: check_broker(c),
    "clock": lambda c, s: check_clock(c),
    "disk": check_disk,
}


def run_checks(
    config: Config,
    state_dir: Path,
    checks: Mapping[str, Callable[[Config, Path], Check]] = CHECKS,
    skip: set[str] | None = None,
) -> list[Check]:
    results = []
    for name, check in checks.items():
        if skip and name in skip:
            results.append(Check(name, SKIP, "skipped (--skip)"))
            continue
        try:
            results.append(check(config, state_dir))
        except Exception as exc:  # a check must never take the doctor down
            results.append(Check(name, FAIL, f"the check itself failed: {exc!r}", "report this"))
    return results


def format_table(results: list[Check]) -> str:
    rows = [("CHECK", "RESULT", "DETAIL", "FIX")]
    rows += [(r.name, r.result.upper(), r.detail, r.fix) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        lines.append("  ".join(cells).rstrip())
    failed = sum(r.result == FAIL for r in results)
    warned = sum(r.result == WARN for r in results)
    lines.append(f"{failed} failed, {warned} warnings, {len(results)} checks")
    return "\n".join(lines)
