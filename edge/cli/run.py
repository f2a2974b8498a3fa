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

from edge.cli.args import (
    Subparsers,
    add_common,
    config_from_args,
    counted,
    positive_float,
    positive_int,
)
from edge.config import Config, config_from_dict
from edge.demo import DEMO_CLIP, DEMO_PUBLIC_KEY, DEMO_WATCHLIST
from edge.errors import WatchlistError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.source import parse_source
from edge.services.recognizer import Runner, RunOptions
from edge.watchlist import keys as keyring
from edge.watchlist.install import open_store
from edge.watchlist.matcher import Watchlist

log = logging.getLogger(__name__)


def demo_state_dir() -> Path:
    """Where the demo keeps its outbox and audit log unless told otherwise: never the device's
    own state directory, so that demo alerts cannot mix with real ones."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge" / "demo"


def run_config(args: argparse.Namespace) -> Config:
    """The config file (or defaults) with ``edge run``'s command-line overrides applied."""
    capture: dict[str, Any] = {}
    if args.realtime:
        capture["file_pacing"] = "realtime"
    if args.max_fps is not None:
        capture["max_fps"] = args.max_fps
    if args.max_reconnects is not None:
        capture["max_reconnects"] = args.max_reconnects
    return config_from_args(args, {"capture": capture} if capture else None)


def analyzer_config(config: Config) -> Config:
    """``run.inference_threads`` replaces ``runtime.threads`` for the run's model sessions."""
    threads = config.run.inference_threads
    if threads is None or threads == config.runtime.threads:
        return config
    data = config.model_dump()
    data["runtime"]["threads"] = threads
    return config_from_dict(data)


def installed_watchlist(
    args: argparse.Namespace, config: Config
) -> tuple[Watchlist, Callable[[], Watchlist | None]]:
    """The device's installed list and a function that returns a newer one once installed."""
    store = open_store(config, state_dir=args.state_dir, public_key=args.pubkey)
    watchlist, newer = store.follow(config.watchlist)
    if watchlist is None:
        raise WatchlistError(
            f"no watchlist installed in {store.root}: install one (`edge watchlist install`) or "
            "pass --watchlist BUNDLE"
        )
    return watchlist, newer


def cmd_run(args: argparse.Namespace) -> int:
    config = run_config(args)
    source_text = args.source or config.capture.source
    demo = source_text is None and args.watchlist is None
    spec = parse_source(source_text if source_text is not None else str(DEMO_CLIP))
    analyzer = FaceAnalyzer.from_config(analyzer_config(config))
    reload = None
    if args.watchlist is not None or demo:
        key = (
            keyring.load_public_key(DEMO_PUBLIC_KEY)
            if demo
            else keyring.trusted_key(
                args.pubkey, config.watchlist.public_key, config.paths(args.state_dir).trust
            )
        )
        watchlist = Watchlist.from_bundle(
            DEMO_WATCHLIST if demo else args.watchlist, key, config.watchlist, analyzer.model_pin
        )
    else:
        watchlist, reload = installed_watchlist(args, config)
    watchlist.require_active()

    state_dir = args.state_dir
    publish = not args.no_publish
    if demo:
        if state_dir is None and not os.environ.get("EDGE_STATE_DIR"):
            state_dir = demo_state_dir()
        # The demo publishes only to a broker it was told about.
        publish = publish and (args.broker is not None or args.config is not None)
        print(
            f"edge demo: {DEMO_CLIP.name} against the demo watchlist "
            f"({counted(len(watchlist), 'entry', 'entries')}); alerts are marked as tests and "
            f"kept in {state_dir or 'the state dir'}"
        )
    options = RunOptions(
        source=spec,
        state_dir=state_dir,
        alerts_jsonl=args.alerts_jsonl,
        annotate=args.annotate,
        overwrite_annotate=args.force,
        metrics_json=args.metrics_json,
        max_frames=args.max_frames,
        duration_s=args.duration,
        publish=publish,
        test_alerts=demo,
        status_line=not args.no_status,
        reload_watchlist=reload,
    )
    return Runner(config, analyzer, watchlist, options).run().exit_code


def register(subparsers: Subparsers) -> None:
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
    run.add_argument(
        "--pubkey",
        type=Path,
        help="trusted key (default: watchlist.public_key, else the keys `edge keys trust` "
        "installed)",
    )
    run.add_argument(
        "--alerts-jsonl", type=Path, metavar="FILE", help="also append each alert as a JSON line"
    )
    run.add_argument(
        "--annotate",
        type=Path,
        metavar="OUT.webm",
        help="write a review video with boxes, track ids and match labels, in a format browsers "
        "play: .webm (VP8/VP9) or .mp4 (H.264), as this OpenCV build can",
    )
    run.add_argument("--force", action="store_true", help="overwrite an existing --annotate file")
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
        help="give up on a lost or unreachable camera or stream after N reconnect attempts in a "
        "row (exit 1); 0: never give up, not even when a stream's server answers 'not found' "
        "or 'unauthorized' (default: capture.max_reconnects; unset: retry for ever, but exit 2 "
        "when the first open is answered 'not found' or 'unauthorized')",
    )
    run.add_argument(
        "--no-publish", action="store_true", help="keep alerts in the outbox, do not connect"
    )
    run.add_argument("--no-status", action="store_true", help="no live status line")
    add_common(run, recognition=True, broker=True, state_dir="outbox, audit log and installed list")
    run.set_defaults(
        handler=cmd_run,
        exit_codes={
            0: "when the source ended or on SIGTERM",
            1: "when a camera or stream was lost for good (capture.max_reconnects)",
            2: "on an error (one line on stderr: 'edge: error: ...'), including a stream whose "
            "server answers 'not found' or 'unauthorized' on the first open",
            130: "on SIGINT (Ctrl-C)",
        },
    )
