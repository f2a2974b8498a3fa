"""``edge run``: watch a camera, stream, video file or folder of stills and alert on the watchlist.

Without arguments it runs the bundled demo (edge/demo: a short clip and a demo watchlist signed
with a demo key). See docs/run.md.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.cli_types import positive_float, positive_int
from edge.config import Config, config_from_dict
from edge.demo import DEMO_CLIP, DEMO_PUBLIC_KEY, DEMO_WATCHLIST
from edge.errors import ConfigError, WatchlistError

log = logging.getLogger(__name__)


def demo_state_dir() -> Path:
    """Where the demo keeps its outbox and audit log unless told otherwise: never the device's
    own state directory, so that demo alerts cannot mix with real ones."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge" / "demo"


def run_config(args: argparse.Namespace) -> Config:
    """The config file (or defaults) with ``edge run``'s command-line overrides applied."""
    from edge.recognition_cli import config_from_args

    data = config_from_args(args).model_dump()
    if args.realtime:
        data["capture"]["file_pacing"] = "realtime"
    if args.max_fps is not None:
        data["capture"]["max_fps"] = args.max_fps
    if args.max_reconnects is not None:
        data["capture"]["max_reconnects"] = args.max_reconnects
    if args.broker:
        host, sep, port = args.broker.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"--broker {args.broker!r}: expected HOST:PORT, e.g. 127.0.0.1:1883")
        data["mqtt"]["host"], data["mqtt"]["port"] = host, int(port)
    return config_from_dict(data)


def analyzer_config(config: Config) -> Config:
    """``run.inference_threads`` replaces ``runtime.threads`` for the run's model sessions."""
    threads = config.run.inference_threads
    if threads is None or threads == config.runtime.threads:
        return config
    data = config.model_dump()
    data["runtime"]["threads"] = threads
    return config_from_dict(data)


def watchlist_from_bundle(path: Path, public_key: Any, config: Config, analyzer: Any) -> Any:
    """Verify a full bundle and load it for matching with this device's model."""
    from edge.watchlist.bundle import ModelPin, load_full, read_bundle
    from edge.watchlist.cli import calibration_of
    from edge.watchlist.matcher import Watchlist

    wl = config.watchlist
    bundle = read_bundle(path, public_key)
    m = bundle.manifest
    if m.kind != "full":
        raise WatchlistError(f"{path} is a delta: `edge run` needs a full bundle")
    pin = ModelPin(analyzer.model_name, analyzer.model_sha256)
    if m.model != pin:
        raise WatchlistError(
            f"{path} was made with model {m.model.name} {m.model.sha256[:12]}..., this device "
            f"runs {pin.name} {pin.sha256[:12]}..."
        )
    index, content = load_full(bundle, wl.expansion_search)
    return Watchlist.from_content(
        m,
        bundle.manifest_sha256,
        content,
        index,
        calibration_of(m),
        top_k=wl.top_k,
        exact_search_max=wl.exact_search_max,
        clock_skew_s=wl.clock_skew_s,
    )


def installed_watchlist(
    args: argparse.Namespace, config: Config, analyzer: Any
) -> tuple[Any, Callable[[], Any]]:
    """The device's installed list and a function that returns a newer one once installed."""
    from edge.alerts.config import resolve_state_dir
    from edge.watchlist import keys as keyring
    from edge.watchlist.bundle import ModelPin
    from edge.watchlist.cli import calibration_of
    from edge.watchlist.install import WatchlistStore

    wl = config.watchlist
    key_path = args.pubkey or wl.public_key
    if key_path is None:
        raise WatchlistError(
            "no trusted public key: pass --pubkey or set watchlist.public_key in the config"
        )
    store = WatchlistStore(
        resolve_state_dir(config.state_dir, args.state_dir) / wl.subdir,
        keyring.load_public_key(key_path),
        ModelPin(analyzer.model_name, analyzer.model_sha256),
        clock_skew_s=wl.clock_skew_s,
        keep_releases=wl.keep_releases,
    )

    def load() -> Any:
        return store.load(
            calibration_of,
            top_k=wl.top_k,
            expansion_search=wl.expansion_search,
            exact_search_max=wl.exact_search_max,
        )

    loaded_from = store.current_path()
    watchlist = load()
    if watchlist is None:
        raise WatchlistError(
            f"no watchlist installed in {store.root}: install one (`edge watchlist install`) or "
            "pass --watchlist BUNDLE"
        )

    def reload() -> Any:
        nonlocal loaded_from
        current = store.current_path()
        if current is None or current == loaded_from:
            return None
        fresh = load()
        loaded_from = current
        return fresh

    return watchlist, reload


def cmd_run(args: argparse.Namespace) -> int:
    from edge.app import Runner, RunOptions
    from edge.pipeline.analyzer import FaceAnalyzer
    from edge.pipeline.capture import parse_source
    from edge.watchlist import keys as keyring

    config = run_config(args)
    source_text = args.source or config.capture.source
    demo = source_text is None and args.watchlist is None
    spec = parse_source(source_text if source_text is not None else str(DEMO_CLIP))
    analyzer = FaceAnalyzer.from_config(analyzer_config(config))
    reload = None
    if args.watchlist is not None:
        key_path = args.pubkey or config.watchlist.public_key
        if key_path is None:
            raise WatchlistError(
                "no trusted public key for --watchlist: pass --pubkey or set "
                "watchlist.public_key in the config"
            )
        watchlist = watchlist_from_bundle(
            args.watchlist, keyring.load_public_key(key_path), config, analyzer
        )
    elif demo:
        watchlist = watchlist_from_bundle(
            DEMO_WATCHLIST, keyring.load_public_key(DEMO_PUBLIC_KEY), config, analyzer
        )
    else:
        watchlist, reload = installed_watchlist(args, config, analyzer)
    watchlist.require_active()

    state_dir = args.state_dir
    publish = not args.no_publish
    if demo:
        if state_dir is None and not os.environ.get("EDGE_STATE_DIR"):
            state_dir = demo_state_dir()
        # The demo publishes only to a broker it was told about.
        publish = publish and (args.broker is not None or args.config is not None)
        print(
            f"edge demo: {DEMO_CLIP.name} against the demo watchlist ({len(watchlist)} "
            f"entries); alerts are marked as tests and kept in {state_dir or 'the state dir'}"
        )
    options = RunOptions(
        source=spec,
        state_dir=state_dir,
        alerts_jsonl=args.alerts_jsonl,
        annotate=args.annotate,
        metrics_json=args.metrics_json,
        max_frames=args.max_frames,
        duration_s=args.duration,
        publish=publish,
        test_alerts=demo,
        status_line=not args.no_status,
        reload_watchlist=reload,
    )
    return Runner(config, analyzer, watchlist, options).run().exit_code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from edge.recognition_cli import add_config_arguments

    run = subparsers.add_parser(
        "run",
        help="watch a camera, stream or video and alert on watchlisted people",
        description="Watch a video source, track faces, match each track's best shots against "
        "the watchlist and raise at most one alert per person per cooldown. Without --source "
        "(and without capture.source in the config) it runs the bundled demo.",
    )
    run.add_argument(
        "--source",
        metavar="SRC",
        help="video file, folder of stills, camera index or /dev/videoN, or rtsp:// or "
        "http(s):// URL (default: capture.source, else the demo clip)",
    )
    run.add_argument(
        "--watchlist",
        type=Path,
        metavar="BUNDLE",
        help="signed full bundle to match against (default: the installed list; the demo list "
        "for the demo)",
    )
    run.add_argument("--pubkey", type=Path, help="trusted key (default: watchlist.public_key)")
    run.add_argument("--state-dir", type=Path, help="outbox, audit log and installed list")
    run.add_argument(
        "--alerts-jsonl", type=Path, metavar="FILE", help="also append each alert as a JSON line"
    )
    run.add_argument(
        "--annotate",
        type=Path,
        metavar="OUT.mp4",
        help="write a review video with boxes, track ids and match labels",
    )
    run.add_argument(
        "--metrics-json", type=Path, metavar="FILE", help="write the end-of-run metrics as JSON"
    )
    run.add_argument(
        "--max-frames", type=positive_int, metavar="N", help="stop after N frames are read"
    )
    run.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds")
    run.add_argument(
        "--realtime",
        action="store_true",
        help="play a video file at its own frame rate, like a camera (capture.file_pacing)",
    )
    run.add_argument(
        "--max-fps", type=float, metavar="F", help="frame-rate cap (capture.max_fps; 0: none)"
    )
    run.add_argument(
        "--max-reconnects",
        type=int,
        metavar="N",
        help="give up on a lost source after N failed reconnects (capture.max_reconnects)",
    )
    run.add_argument("--broker", metavar="HOST:PORT", help="MQTT broker (default: mqtt.host/port)")
    run.add_argument(
        "--no-publish", action="store_true", help="keep alerts in the outbox, do not connect"
    )
    run.add_argument("--no-status", action="store_true", help="no live status line")
    add_config_arguments(run)
    run.set_defaults(handler=cmd_run)
