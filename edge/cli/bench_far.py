"""``edge bench far``: small and distant faces, by face width (or, with ``--write-clip``, a
clip of people walking towards the camera)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge.cli.args import add_common, config_from_args, positive_float, positive_int
from edge.cli.progress import progress_bar
from edge.errors import ConfigError
from edge.pipeline.analyzer import FaceAnalyzer


def _frame_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 64 or int(h) < 64:
        raise argparse.ArgumentTypeError("WIDTHxHEIGHT in pixels, each at least 64, e.g. 1920x1080")
    return int(w), int(h)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            "comma-separated face widths in px, e.g. 24,48,96"
        ) from exc
    if not widths or any(w < 8 for w in widths):
        raise argparse.ArgumentTypeError("face widths must be at least 8 px")
    return tuple(sorted(set(widths)))


FAR_EPILOG = """\
definitions, per face width W (the detector's box width in frame px):
  detect              share of pasted faces detected (IoU >= 0.5 with the true box)
  false_per_frame     detections on no face at all, per frame (real faces of the background
                      and other people in a pasted photo count neither as hits nor as false)
  identify            share of mated faces (people on the list) that were detected, passed the
                      quality gate and whose top candidate is the right person (rank-1)
  identify_above_threshold
                      the same, with the score at or above the list's threshold: an alert
  false_match_rate    share of non-mated faces (not on the list) whose top candidate reaches
                      the threshold
  ms_per_frame        median ms of detect + align + quality + embed of the frame's pasted faces
  identify_ungated    rank-1 had the quality gate let every detected face through (diagnostic)
The list is enrolled from other, full-size photos of the same people (up to 5 each); its
threshold comes from watchlist.target_fpir at its template count. The full_size row runs the
same photos at full size: the ceiling the embedder leaves for any width. The default run
takes about 2 minutes on 2 cores. More: docs/recognition.md, "Small and distant faces".
"""


def register(bench_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from edge.bench import far

    parser = bench_subparsers.add_parser(
        "far",
        help="small and distant faces: detection, identification and cost by face width",
        description=(far.__doc__ or "").splitlines()[0],
        epilog=FAR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="LFW-style folder: images/<Name>/<Name>_NNNN.jpg",
    )
    parser.add_argument(
        "--frame",
        type=_frame_size,
        default=(1920, 1080),
        metavar="WxH",
        help="frame size",
    )
    parser.add_argument(
        "--widths",
        type=_widths,
        default=far.DEFAULT_WIDTHS,
        metavar="W,W,...",
        help="face widths in px, comma-separated",
    )
    parser.add_argument(
        "--frames", type=positive_int, default=40, metavar="N", help="frames per width"
    )
    parser.add_argument(
        "--faces",
        type=positive_int,
        default=6,
        metavar="N",
        help="faces per frame, half of them people on the list",
    )
    parser.add_argument(
        "--gallery-size",
        type=positive_int,
        default=100,
        metavar="N",
        help="identities on the watchlist",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="picks the people, backgrounds and spots"
    )
    parser.add_argument(
        "--backgrounds",
        type=Path,
        metavar="DIR",
        help="more background scenes (images) besides the demo clip and walls of LFW photos",
    )
    parser.add_argument(
        "--save-frames",
        type=Path,
        metavar="DIR",
        help="write the first frame of each width and every frame with a false or duplicate "
        "detection, boxes drawn (green hit, yellow missed, red false, orange duplicate, grey "
        "ignored real face)",
    )
    _add_clip_options(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    add_common(parser, recognition=True)
    parser.set_defaults(handler=cmd_far)


def _add_clip_options(parser: argparse.ArgumentParser) -> None:
    """``--write-clip`` makes a test clip instead of running the benchmark."""
    parser.add_argument(
        "--write-clip",
        type=Path,
        metavar="OUT.mp4",
        help="instead of the benchmark: write a 25 fps clip of the --frame size in which people "
        "walk towards a fixed camera, their faces growing from 28 to 160 px (for measuring "
        "`edge run --source OUT.mp4` on large frames)",
    )
    parser.add_argument(
        "--seconds", type=positive_float, default=8.0, help="--write-clip: its length in seconds"
    )
    parser.add_argument(
        "--enroll-photos",
        type=Path,
        metavar="DIR",
        help="--write-clip: also write the other photos of the listed walkers (never the one in "
        "the clip) to DIR/<Name>/, for `edge watchlist build --photos DIR`",
    )


def cmd_far(args: argparse.Namespace) -> int:
    from edge.bench import far

    settings = far.Settings(
        frame=args.frame,
        widths=args.widths,
        frames=args.frames,
        faces=args.faces,
        gallery_size=args.gallery_size,
        seed=args.seed,
        backgrounds=args.backgrounds,
    )
    if args.enroll_photos is not None and args.write_clip is None:
        raise ConfigError("--enroll-photos goes with --write-clip (the photos of its walkers)")
    analyzer = FaceAnalyzer.from_config(config_from_args(args))
    if args.write_clip is not None:
        made = far.make_clip(
            analyzer,
            args.data,
            args.write_clip,
            frame=args.frame,
            seconds=args.seconds,
            seed=args.seed,
            progress=lambda items, what: progress_bar(items, what, unit="frame"),
            enroll_photos=args.enroll_photos,
        )
        if args.json:
            print(json.dumps(made))
            return 0
        walkers = ", ".join(f"{n}*" if n in made["listed"] else n for n in made["walkers"])
        folder = args.enroll_photos
        starred = (
            f"in {folder}, LFW's other photos of them: `edge watchlist build --photos {folder}`"
            if folder is not None
            else "--enroll-photos DIR writes LFW's other photos of them, to enroll"
        )
        print(
            f"wrote {made['clip']}: {made['frames']} frames of {made['frame']} at "
            f"{made['fps']:g} fps; in order of entry: {walkers} (*: {starred})"
        )
        return 0
    result = far.run(
        analyzer,
        args.data,
        settings,
        lambda items, what: progress_bar(items, what, unit="step"),
        args.save_frames,
    )
    if args.json:
        print(json.dumps(result))  # widths in ascending order, as asked
    else:
        for line in far.format_report(result):
            print(line)
    return 0
