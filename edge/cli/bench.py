"""``edge bench ...``: accuracy and speed, measured here rather than asserted by timed tests."""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.bench import identify, index
from edge.cli import bench_far
from edge.cli.args import (
    Subparsers,
    add_common,
    command_group,
    config_from_args,
)
from edge.cli.progress import progress_bar
from edge.errors import EdgeError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.embed import EMBEDDING_DIM
from edge.watchlist.index import Dtype, IndexParams
from edge.watchlist.policy import calibration_for

log = logging.getLogger(__name__)


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
        f"({result['backend']}/{result['precision']}, detector {result['detector_precision']}, "
        f"refiner {result['refiner']})"
    )
    print(f"  threshold (mean over folds): {result['threshold']:.3f}")
    print(
        f"  images: {result['images']}, no face detected: {result['no_face']} "
        f"({result['no_face_handling']}), below quality floor: {result['gated']} "
        f"({100 * result['gated_share']:.2f}%)"
    )
    return 0


def _print_speed_table(rows: list[dict[str, Any]]) -> None:
    stages = ("decode", "detect", "align", "embed")
    header = (
        f"{'backend':8} {'prec':5} {'det':5} {'frame':>9} {'mode':5} {'faces':>5} "
        + " ".join(f"{stage + ' p50/p90':>18}" for stage in stages)
        + f" {'fps':>7}"
    )
    print(header)
    for row in rows:
        cells = " ".join(
            f"{row[f'{s}_ms_p50']:>8.2f}/{row[f'{s}_ms_p90']:<8.2f} ms"[:18].rjust(18)
            for s in stages
        )
        print(
            f"{row['backend']:8} {row['precision']:5} {row['detector_precision']:5} "
            f"{row['frame']:>9} {row['mode']:5} "
            f"{row['faces']:>5} {cells} {row['fps']:>7.1f}"
        )
    print(
        "prec: embedder.precision; det: detector.precision. "
        "fps: decode to embeddings of every face, every frame. 'still': the whole frame and "
        "every tile; 'video': as edge run, this frame's share of the tiles and crops around "
        "tracked faces (edge run also embeds only some shots, so it runs faster)."
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


def register(subparsers: Subparsers) -> None:
    bench_sub = command_group(subparsers, "bench", "accuracy and speed benchmarks", "BENCHMARK")

    lfw = bench_sub.add_parser("lfw", help="LFW verification accuracy (k-fold cross-validated)")
    lfw.add_argument("--data", type=Path, required=True, help="folder with images/ and pairs.txt")
    lfw.add_argument("--json", action="store_true", help="one JSON object")
    add_common(lfw, recognition=True)
    lfw.set_defaults(handler=cmd_lfw)

    speed = bench_sub.add_parser("speed", help="per-stage latency and frames per second")
    speed.add_argument("--repeats", type=int, default=30, help="timed frames per configuration")
    speed.add_argument("--json", action="store_true", help="one JSON array")
    add_common(speed, recognition=True)
    speed.set_defaults(handler=cmd_speed)

    _register_identify(bench_sub)
    _register_index(bench_sub)
    bench_far.register(bench_sub)
    _register_dispatch(bench_sub)


# --- bench identify -------------------------------------------------------------------------


def _gallery_size(text: str) -> int | None:
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("an integer or 'max'") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _register_identify(
    bench_subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = bench_subparsers.add_parser(
        "identify",
        help="open-set 1:N identification on an LFW-style folder",
        description=(identify.__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--data", type=Path, required=True, help="folder with images/<Name>/")
    parser.add_argument(
        "--gallery-size",
        type=_gallery_size,
        default=None,
        help="identities enrolled, or 'max' for every eligible one (default: max)",
    )
    parser.add_argument("--seed", type=int, default=0, help="which identities are enrolled")
    parser.add_argument(
        "--cache", type=Path, help="npz file to keep embeddings in between runs (e.g. in /tmp)"
    )
    parser.add_argument(
        "--exclude",
        type=lambda text: {n.strip() for n in text.split(",") if n.strip()},
        default=set(),
        metavar="NAMES",
        help="comma-separated identities to leave out (e.g. known labelling errors)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    add_common(parser, recognition=True)
    parser.set_defaults(handler=cmd_identify)


def cmd_identify(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    data = identify.embed_folder(
        args.data, config, args.cache, lambda items: progress_bar(items, "embedding")
    )
    try:
        calibration = calibration_for(data.model_name, data.model_sha256)
    except EdgeError as exc:
        log.warning("no calibrated thresholds in the report: %s", exc)
        calibration = None
    if args.exclude:
        unknown = args.exclude - set(data.names.tolist())
        if unknown:
            raise EdgeError(f"--exclude: no such identity: {', '.join(sorted(unknown))}")
        data = identify.without(data, args.exclude)
    result = identify.run(data, args.gallery_size, seed=args.seed, calibration=calibration)
    if args.exclude:
        result["excluded_identities"] = sorted(args.exclude)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for line in identify.format_report(result):
            print(line)
    return 0


# --- bench index ----------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("comma-separated integers, e.g. 1000,100000") from exc
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be >= 1")
    return sizes


def _register_index(bench_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = bench_subparsers.add_parser(
        "index",
        help="template index: add rate, memory, bundle size, latency, recall@1",
        description=(index.__doc__ or "").splitlines()[0],
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1000, 100_000, 1_000_000],
        help="comma-separated entry counts",
    )
    parser.add_argument("--queries", type=int, default=1000, help="timed queries per size")
    parser.add_argument(
        "--distribution", choices=["face", "isotropic"], default="face", help="templates drawn"
    )
    parser.add_argument(
        "--dtype",
        choices=["i8", "f16"],
        help="template storage type (default: watchlist.index_dtype)",
    )
    parser.add_argument(
        "--connectivity", type=int, help="HNSW graph degree (default: watchlist.connectivity)"
    )
    parser.add_argument(
        "--expansion-add",
        type=int,
        help="HNSW build candidate list (default: watchlist.expansion_add)",
    )
    parser.add_argument(
        "--expansion-search",
        type=_sizes,
        help="one value or a comma-separated sweep (default: watchlist.expansion_search)",
    )
    parser.add_argument(
        "--load",
        choices=["view", "copy"],
        default="view",
        help="how the saved index is opened: memory-mapped as a device does (default) or copied",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for building")
    parser.add_argument("--seed", type=int, default=0, help="random templates and queries")
    parser.add_argument("--json", action="store_true", help="one JSON object per size (lines)")
    add_common(parser)
    parser.set_defaults(handler=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    wl = config_from_args(args).watchlist
    dtype: Dtype = args.dtype or wl.index_dtype
    params = IndexParams(
        ndim=EMBEDDING_DIM,
        dtype=dtype,
        connectivity=args.connectivity or wl.connectivity,
        expansion_add=args.expansion_add or wl.expansion_add,
        expansion_search=wl.expansion_search,
    )
    sweep = args.expansion_search or [wl.expansion_search]
    if not args.json:
        print(
            f"index cos/{params.dtype}, connectivity {params.connectivity}, expansion_add "
            f"{params.expansion_add}; index "
            f"{'memory-mapped' if args.load == 'view' else 'copied'}; "
            f"{args.distribution} templates; queries at cosine 0.7-0.8 to an enrolled one, k=1"
        )
        print(index.HEADER)
    for result in index.run(
        args.sizes,
        params=params,
        distribution=args.distribution,
        queries=args.queries,
        threads=args.threads,
        seed=args.seed,
        expansion_searches=sweep,
        view=args.load == "view",
    ):
        print(
            json.dumps(result, sort_keys=True) if args.json else index.format_row(result),
            flush=True,
        )
    return 0


# --- bench dispatch -------------------------------------------------------------------------


def _register_dispatch(
    bench_subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    from edge.bench import dispatch

    parser = bench_subparsers.add_parser(
        "dispatch",
        help="dispatch: alerts stored per second, first page of the alert list with N stored",
        description=(dispatch.__doc__ or "").splitlines()[0],
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database to fill (default: a temporary SQLite file); e.g. an empty PostgreSQL "
        "database postgresql://USER@HOST/DB",
    )
    parser.add_argument("--alerts", type=int, default=20_000, help="alerts timed for ingest")
    parser.add_argument(
        "--stored", type=int, default=1_000_000, help="alerts in the database for the page timing"
    )
    parser.add_argument("--batch", type=int, default=500, help="alerts per commit")
    parser.add_argument("--repeats", type=int, default=200, help="timed page requests")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    add_common(parser)
    parser.set_defaults(handler=cmd_dispatch)


class _DispatchTarget:
    """The real store and web app, for edge.bench.dispatch (which may not import them)."""

    def __init__(self, url: str) -> None:
        from fastapi.testclient import TestClient

        from edge.dispatch.auth import Accounts
        from edge.dispatch.deps import Deps
        from edge.dispatch.received import checked, received
        from edge.dispatch.store import Store
        from edge.dispatch.web import create_app

        self.store = Store(url)
        self._received = received
        self._document = checked
        accounts = Accounts(self.store)
        name = f"bench-{int(time.time())}"
        accounts.add_user(name, "auditor", secrets.token_urlsafe(16), by="bench")
        token = accounts.create_token(name, by="bench")
        deps = Deps(store=self.store, accounts=accounts, config=accounts.config)
        self.client = TestClient(create_app(deps))
        self.headers = {"Authorization": f"Bearer {token}"}

    def ingest(self, payloads: Sequence[bytes]) -> None:
        self.store.ingest([self._received(p) for p in payloads])

    def fill(self, alerts: Sequence[dict[str, Any]]) -> None:
        self.store.ingest([self._document(alert) for alert in alerts])

    def count(self) -> int:
        return self.store.count_alerts()

    def first_page(self, which: str) -> None:
        path = "/api/alerts?limit=50" if which == "api" else "/"
        response = self.client.get(path, headers=self.headers)
        if response.status_code != 200:
            raise EdgeError(f"{path} answered {response.status_code}")


def cmd_dispatch(args: argparse.Namespace) -> int:
    from edge.bench import dispatch

    with tempfile.TemporaryDirectory(prefix="edge-bench-dispatch-") as work:
        url = args.db or f"sqlite:///{Path(work) / 'dispatch.db'}"
        target = _DispatchTarget(url)
        try:
            report = dispatch.run(
                target,
                alerts=args.alerts,
                stored=args.stored,
                batch=args.batch,
                repeats=args.repeats,
                progress=lambda message: print(f"bench dispatch: {message}", file=sys.stderr),
            )
        finally:
            target.store.close()
    report["database"] = target.store.where
    print(
        json.dumps(report, sort_keys=True)
        if args.json
        else dispatch.format_report(report, target.store.where)
    )
    return 0
