"""``edge bench ...``: accuracy and speed, measured here rather than asserted by timed tests."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.bench import identify, index
from edge.errors import EdgeError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.progress import progress_bar
from edge.recognition_cli import add_config_arguments, config_from_args


def cmd_lfw(args: argparse.Namespace) -> int:
    from edge.bench import lfw

    if not (args.data / "pairs.txt").is_file():
        raise EdgeError(f"{args.data}: no pairs.txt (expected an LFW folder with images/)")
    analyzer = FaceAnalyzer.from_config(config_from_args(args))
    result = lfw.run(analyzer, args.data, lambda keys: progress_bar(keys, "LFW"))
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"LFW {result['folds']}-fold: accuracy {result['accuracy']:.4f} "
        f"± {result['std']:.4f} on {result['pairs']} pairs "
        f"({result['backend']}/{result['precision']}, refiner {result['refiner']})"
    )
    print(f"  threshold (mean over folds): {result['threshold']:.3f}")
    print(
        f"  images: {result['images']}, no face detected: {result['no_face']} "
        f"({result['no_face_handling']}), below quality floor: {result['gated']} "
        f"({100 * result['gated_share']:.2f}%)"
    )
    return 0


def _print_speed_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'backend':8} {'prec':5} {'faces':>5} "
        + " ".join(f"{stage + ' p50/p90':>18}" for stage in ("decode", "detect", "align", "embed"))
        + f" {'fps':>7}"
    )
    print(header)
    for row in rows:
        cells = " ".join(
            f"{row[f'{s}_ms_p50']:>8.2f}/{row[f'{s}_ms_p90']:<8.2f} ms"[:18].rjust(18)
            for s in ("decode", "detect", "align", "embed")
        )
        print(
            f"{row['backend']:8} {row['precision']:5} {row['faces']:>5} {cells} {row['fps']:>7.1f}"
        )


def cmd_speed(args: argparse.Namespace) -> int:
    from edge.bench import speed

    rows = speed.run(
        config_from_args(args),
        repeats=args.repeats,
        progress=lambda msg: print(f"bench speed: {msg}", file=sys.stderr),
    )
    if args.json:
        print(json.dumps(rows))
    else:
        _print_speed_table(rows)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("bench", help="accuracy and speed benchmarks")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)

    lfw = bench_sub.add_parser("lfw", help="LFW verification accuracy (k-fold cross-validated)")
    lfw.add_argument("--data", type=Path, required=True, help="folder with images/ and pairs.txt")
    lfw.add_argument("--json", action="store_true", help="one JSON object")
    add_config_arguments(lfw)
    lfw.set_defaults(handler=cmd_lfw)

    speed = bench_sub.add_parser("speed", help="per-stage latency and frames per second")
    speed.add_argument("--repeats", type=int, default=30, help="timed frames per configuration")
    speed.add_argument("--json", action="store_true", help="one JSON array")
    add_config_arguments(speed)
    speed.set_defaults(handler=cmd_speed)

    identify.register(bench_sub)
    index.register(bench_sub)
