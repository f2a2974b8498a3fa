"""``edge run``: watch a camera, stream, video file or folder of stills and alert on the watchlist.

Without arguments it runs the bundled demo (edge/demo: a short clip and a demo watchlist signed
with a demo key). See docs/run.md.
"""

from __future__ import annotations

import argparse
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
from edge.config import Config
from edge.demo import DEMO_CLIP
from edge.services.recognizer import Runner
from edge.services.run_setup import RunRequest, set_up_run
from edge.services.run_state import RunOptions


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


def cmd_run(args: argparse.Namespace) -> int:
    config = run_config(args)
    request = RunRequest(
        source=args.source,
        watchlist=args.watchlist,
        pubkey=args.pubkey,
        state_dir=args.state_dir,
        publish=not args.no_publish,
        broker_named=args.broker is not None or args.config is not None,
    )
    setup = set_up_run(config, request)
    if setup.demo:
        print(
            f"edge demo: {DEMO_CLIP.name} against the demo watchlist "
            f"({counted(len(setup.watchlist), 'entry', 'entries')}); alerts are marked as tests "
            f"and kept in {setup.state_dir or 'the state dir'}"
        )
    options = RunOptions(
        source=setup.source,
        state_dir=setup.state_dir,
        alerts_jsonl=args.alerts_jsonl,
        annotate=args.annotate,
        overwrite_annotate=args.force,
        metrics_json=args.metrics_json,
        max_frames=args.max_frames,
        duration_s=args.duration,
        publish=setup.publish,
        test_alerts=setup.demo,
        status_line=not args.no_status,
        reload_watchlist=setup.reload,
    )
    return Runner(config, setup.analyzer, setup.watchlist, options).run().exit_code


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
