"""``edge watchlist build|verify|show|install|status`` and ``edge identify``.

Every failure is an :class:`EdgeError` with a one-line message (``edge: error: ...``, exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.audit import AuditLog
from edge.cli.args import Subparsers, add_common, command_group, config_from_args, counted
from edge.cli.progress import progress_bar
from edge.clock import utc_now
from edge.config import Config
from edge.errors import EdgeError, EnrollmentError, WatchlistError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.images import decode_image, read_image
from edge.pipeline.pick import CLEARLY_LARGEST, PICK_MODES, pick_face
from edge.watchlist import keys as keyring
from edge.watchlist.build import BuildRequest, Enroller, Refused, build_list
from edge.watchlist.bundle import (
    load_full,
    load_templates,
    read_bundle,
    read_bundle_file,
    read_unverified,
)
from edge.watchlist.enroll import EnrollReport
from edge.watchlist.entries import parse_entries
from edge.watchlist.install import WatchlistStore, open_store
from edge.watchlist.manifest import DELTA_ENTRIES, DELTA_INDEX, Manifest
from edge.watchlist.matcher import Watchlist, calibration_of
from edge.watchlist.policy import predicted_fpir

EXIT_PARTIAL = 1  # watchlist build: an entry has no usable photo (and no --allow-partial)
PUBKEY_HELP = (
    "trusted key (default: watchlist.public_key, else the keys `edge keys trust` installed)"
)
STATE_DIR_HELP = "the installed list and trusted keys"

# --- shared helpers -----------------------------------------------------------------------------


def _add_device_options(parser: argparse.ArgumentParser, *, recognition: bool = False) -> None:
    parser.add_argument("--pubkey", type=Path, help=PUBKEY_HELP)
    add_common(parser, recognition=recognition, state_dir=STATE_DIR_HELP)


def _store(
    args: argparse.Namespace, config: Config, audit: AuditLog | None = None
) -> WatchlistStore:
    return open_store(config, state_dir=args.state_dir, public_key=args.pubkey, audit=audit)


def _threshold_text(manifest: Manifest) -> str:
    policy = manifest.policy
    if policy.mode == "fixed":
        return f"fixed threshold {policy.threshold:.4f}"
    try:
        cal = calibration_of(manifest)
    except EdgeError as exc:
        return f"target FPIR {policy.target_fpir} (threshold unknown here: {exc})"
    threshold = policy.resolve(cal, manifest.template_count)
    return (
        f"target FPIR {policy.target_fpir} at {manifest.template_count} templates -> "
        f"threshold {threshold:.4f}"
    )


def _manifest_lines(m: Manifest) -> list[str]:
    lines = [
        f"list {m.list_id} version {m.version} ({m.kind} bundle)",
        f"  created {m.created}; valid from {m.valid_from} until {m.valid_until}",
        f"  entries {m.entry_count}, templates {m.template_count}",
        f"  embedding model {m.model.name} sha256 {m.model.sha256[:16]}..., dim {m.dim}",
        f"  index cos/{m.dtype}, connectivity {m.connectivity}, expansion_add {m.expansion_add}",
        f"  matching: {_threshold_text(m)}",
        f"  signed by key {m.signing_key_id}",
    ]
    if m.delta is not None:
        lines.append(
            f"  delta against version {m.delta.base_version}: removes "
            f"{counted(len(m.delta.remove_entries), 'entry', 'entries')}, adds "
            f"{counted(m.delta.add_entries, 'entry', 'entries')} "
            f"({counted(m.delta.add_templates, 'template')})"
        )
    return lines


# --- build --------------------------------------------------------------------------------------


def cmd_build(args: argparse.Namespace) -> int:
    from edge.pipeline.embed import EMBEDDING_DIM

    config = config_from_args(args)
    request = BuildRequest(
        photos=args.photos,
        key=args.key,
        out=args.out,
        list_id=args.list_id,
        expires=args.expires,
        valid_from=args.valid_from,
        entries=args.entries,
        base=args.base,
        full_out=args.full_out,
        dispatch_out=args.dispatch_out,
        version=args.version,
        dtype=args.dtype,
        target_fpir=args.target_fpir,
        threshold=args.threshold,
        allow_partial=args.allow_partial,
    )
    enroller = Enroller(
        make_analyzer=lambda: FaceAnalyzer.from_config(config),
        dim=EMBEDDING_DIM,
        decode=decode_image,
        pick=lambda faces, image: pick_face(faces, image, args.pick),
        progress=lambda it: progress_bar(it, "enrolling", unit="photo"),
    )
    outcome = build_list(request, config.watchlist, enroller)
    _print_report(outcome.report, args)
    if isinstance(outcome, Refused):
        if not outcome.some_usable:
            raise EnrollmentError(outcome.message)
        if args.json:
            print(
                json.dumps(
                    {"error": outcome.message, "report": outcome.report.to_json()},
                    sort_keys=True,
                )
            )
        print(f"edge: error: {outcome.message}", file=sys.stderr)
        return EXIT_PARTIAL
    if not args.json:
        for line in _manifest_lines(outcome.manifest):
            print(line)
        print(f"written to {args.out}" + (f" and {args.full_out}" if args.full_out else ""))
        print(
            f"entry details for dispatch (never sent to devices) written to {outcome.dispatch_out}"
        )
    else:
        print(
            json.dumps(
                {
                    "manifest": outcome.manifest.to_json(),
                    "report": outcome.report.to_json(),
                    "dispatch_details": str(outcome.dispatch_out),
                },
                sort_keys=True,
            )
        )
    return 0


def _print_report(report: EnrollReport, args: argparse.Namespace) -> None:
    if args.report is not None:
        try:
            args.report.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise WatchlistError(f"cannot write report {args.report}: {exc.strerror}") from exc
    if args.json:
        return
    print(
        f"photos: {len(report.photos)}, accepted {report.accepted}, rejected {len(report.rejected)}"
    )
    for photo in report.rejected:
        print(f"  rejected {photo.path}: {photo.reason}")
    for photo in report.picked:
        print(f"  picked in {photo.path}: {photo.picked}")
    for label, why in sorted(report.dropped.items()):
        print(f"  left off the list: {label}: {why}")


# --- verify / show ------------------------------------------------------------------------------


def _trusted(args: argparse.Namespace, config: Config) -> keyring.TrustedKey:
    return keyring.trusted_key(
        args.pubkey, config.watchlist.public_key, config.paths(args.state_dir).trust
    )


def cmd_verify(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    bundle = read_bundle(args.bundle, _trusted(args, config))
    m = bundle.manifest
    if m.kind == "full":
        load_full(bundle)
        what = "signature, file hashes and contents OK"
    else:
        added = parse_entries(read_bundle_file(args.bundle / DELTA_ENTRIES), DELTA_ENTRIES)
        load_templates(args.bundle / DELTA_INDEX, added, m.index_params())
        what = (
            "signature, file hashes and delta files OK (the result is checked against the base "
            "on install)"
        )
    if args.json:
        print(json.dumps({"ok": True, "manifest": m.to_json()}, sort_keys=True))
    else:
        print(f"{args.bundle}: {what}")
        for line in _manifest_lines(m):
            print(line)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    m = read_unverified(args.bundle)
    entries: list[dict[str, Any]] = []
    if args.entries:
        name = "entries.json" if m.kind == "full" else DELTA_ENTRIES
        raw = read_bundle_file(args.bundle / name)
        entries = [e.to_json() for e in parse_entries(raw, name)]
    if args.json:
        out: dict[str, Any] = {"verified": False, "manifest": m.to_json()}
        if args.entries:
            out["entries"] = entries
        print(json.dumps(out, sort_keys=True))
        return 0
    print("(not verified: use `edge watchlist verify` to check the signature)")
    for line in _manifest_lines(m):
        print(line)
    for e in entries:
        extra = "".join(
            f", {k} {e[k]}" for k in ("expires", "reason", "legal_basis", "case_ref") if k in e
        )
        print(f"  [{e['id']}] {e['label']}: {counted(len(e['templates']), 'template')}{extra}")
    return 0


# --- install / status ---------------------------------------------------------------------------


def cmd_install(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    audit = AuditLog(config.paths(args.state_dir).audit, fsync=config.audit.fsync)
    try:
        store = _store(args, config, audit)
        result = store.install(args.bundle, replace_list=args.replace_list)
    finally:
        audit.close()
    previous = (
        f" (was version {result.previous_version})" if result.previous_version is not None else ""
    )
    print(
        f"installed {result.list_id} version {result.version} from a {result.kind} bundle"
        f"{previous}: {counted(result.entries, 'entry', 'entries')}, "
        f"{counted(result.templates, 'template')}"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    store = _store(args, config)
    watchlist = store.load(config.watchlist)
    if watchlist is None:
        if args.json:
            print(json.dumps({"installed": False}))
        else:
            print(f"no watchlist installed in {store.root}")
        return 0
    m = watchlist.manifest
    now = utc_now()
    expired = sum(
        1 for e in watchlist.entries() if e.expires_at is not None and e.expires_at <= now
    )
    if args.json:
        print(
            json.dumps(
                {
                    "installed": True,
                    "state": watchlist.active_state(now),
                    "threshold": watchlist.threshold,
                    "expired_entries": expired,
                    "manifest": m.to_json(),
                },
                sort_keys=True,
            )
        )
        return 0
    print(f"{store.root}: {watchlist.active_state(now)}, verified")
    for line in _manifest_lines(m):
        print(line)
    if expired:
        print(f"  {counted(expired, 'entry has', 'entries have')} expired and are not matched")
    return 0


# --- identify -----------------------------------------------------------------------------------


def cmd_identify(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    analyzer = FaceAnalyzer.from_config(config)
    if args.watchlist is not None:
        watchlist = Watchlist.from_bundle(
            args.watchlist,
            _trusted(args, config),
            config.watchlist,
            analyzer.model_pin,
            top_k=args.top_k,
            view=True,
        )
    else:
        installed = _store(args, config).load(config.watchlist, top_k=args.top_k)
        if installed is None:
            raise WatchlistError("no watchlist installed: pass --watchlist BUNDLE")
        watchlist = installed
    watchlist.require_active()
    image = read_image(args.image)
    faces = analyzer.analyze(image)
    records = []
    for face in faces:
        record: dict[str, Any] = {
            "box": [round(float(v), 1) for v in face.box],
            "score": round(face.score, 4),
            "quality": round(face.quality, 4),
        }
        if face.embedding is None:
            record.update(decision="low quality", match=None, candidates=[])
        else:
            result = watchlist.identify(face.embedding)
            record.update(
                decision="match" if result.match is not None else "no match",
                match=result.match.to_json() if result.match is not None else None,
                candidates=[c.to_json() for c in result.candidates],
            )
        records.append(record)
    m = watchlist.manifest
    if args.json:
        print(
            json.dumps(
                {
                    "image": str(args.image),
                    "watchlist": {"list_id": m.list_id, "version": m.version},
                    "threshold": round(watchlist.threshold, 4),
                    "faces": records,
                },
                sort_keys=True,
            )
        )
        return 0
    fpir = ""
    if m.policy.mode == "fpir":
        cal = calibration_of(m)
        if cal is not None:
            fpir = (
                f", predicted FPIR {predicted_fpir(cal, watchlist.threshold, m.template_count):.2g}"
            )
    print(
        f"{args.image}: {len(records)} face(s); watchlist {m.list_id} v{m.version}, "
        f"{counted(len(watchlist), 'entry', 'entries')}, threshold {watchlist.threshold:.4f}{fpir}"
    )
    for n, r in enumerate(records, 1):
        head = f"  face {n} box {r['box']} quality {r['quality']:.2f}: {r['decision'].upper()}"
        if r["match"] is not None:
            head += f" {r['match']['label']} ({r['match']['score']:.4f})"
        print(head)
        if r["candidates"]:
            print(
                "    candidates: "
                + ", ".join(f"{c['label']} {c['score']:.4f}" for c in r["candidates"])
            )
    return 0


# --- registration -------------------------------------------------------------------------------


def register(subparsers: Subparsers) -> None:
    sub = command_group(subparsers, "watchlist", "build, check and install watchlist bundles")

    build = sub.add_parser(
        "build",
        help="enroll a photo folder into a signed bundle (or a delta with --base)",
        description="DIR holds one folder per person (the folder name is the label).",
    )
    build.add_argument(
        "--photos",
        type=Path,
        required=True,
        metavar="DIR",
        help="one folder per person, named by the label, holding their photos",
    )
    build.add_argument("--key", type=Path, required=True, help="the hub's private key (PEM)")
    build.add_argument("--out", type=Path, required=True, help="bundle folder to create")
    build.add_argument("--list-id", help="list id (default: the base's, else DIR's name)")
    build.add_argument("--expires", metavar="DATE", help="list valid until (ISO 8601, UTC)")
    build.add_argument("--valid-from", metavar="DATE", help="list valid from (default: now)")
    build.add_argument(
        "--entries",
        type=Path,
        metavar="CSV",
        help="per-entry fields (expires goes to devices; reason, legal_basis, case_ref only "
        "into the dispatch details)",
    )
    build.add_argument("--base", type=Path, help="full bundle to make a delta against")
    build.add_argument(
        "--full-out", type=Path, help="with --base: also write the equivalent full bundle here"
    )
    build.add_argument(
        "--dispatch-out",
        type=Path,
        metavar="FILE",
        help="signed entry details for dispatch, outside the bundle (default: the full "
        "bundle's path + .dispatch.json)",
    )
    build.add_argument("--version", type=int, help="list version (default: UTC YYYYMMDDhhmmss)")
    build.add_argument("--dtype", choices=["i8", "f16"], help="template storage type")
    policy = build.add_mutually_exclusive_group()
    policy.add_argument("--target-fpir", type=float, help="derive the threshold from this FPIR")
    policy.add_argument("--threshold", type=float, help="fixed cosine threshold (override)")
    build.add_argument(
        "--pick",
        choices=PICK_MODES,
        default="largest",
        help="which face of a photo showing several: the largest, if at least "
        f"{CLEARLY_LARGEST}x as wide as the next (default); the one nearest the centre; or only "
        "a photo with exactly one face",
    )
    build.add_argument(
        "--allow-partial",
        action="store_true",
        help="build even if some entries have no usable photo (they are left off the list); "
        f"without it that exits {EXIT_PARTIAL} and writes nothing",
    )
    build.add_argument("--report", type=Path, help="write the per-photo report (JSON) here")
    build.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_common(build, recognition=True)
    build.set_defaults(
        handler=cmd_build,
        exit_codes={1: "when an entry has no usable photo (without --allow-partial)"},
    )

    verify = sub.add_parser("verify", help="check a bundle's signature, hashes and contents")
    verify.add_argument("bundle", type=Path, help="bundle folder to check")
    verify.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    _add_device_options(verify)
    verify.set_defaults(handler=cmd_verify)

    show = sub.add_parser("show", help="print a bundle's manifest (not verified)")
    show.add_argument("bundle", type=Path, help="bundle folder to describe")
    show.add_argument("--entries", action="store_true", help="list the entries too")
    show.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    show.set_defaults(handler=cmd_show)

    install = sub.add_parser("install", help="verify a bundle and make it this device's list")
    install.add_argument("bundle", type=Path, help="full bundle or delta to install")
    install.add_argument(
        "--replace-list", action="store_true", help="allow a bundle with another list id"
    )
    _add_device_options(install, recognition=True)
    install.set_defaults(handler=cmd_install)

    status = sub.add_parser("status", help="the installed list, verified")
    status.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    _add_device_options(status, recognition=True)
    status.set_defaults(handler=cmd_status)

    identify = subparsers.add_parser("identify", help="match the faces in a photo to a watchlist")
    identify.add_argument("image", type=Path, help="photo whose faces are searched in the list")
    identify.add_argument(
        "--watchlist", type=Path, metavar="BUNDLE", help="full bundle (default: the installed list)"
    )
    identify.add_argument(
        "--top-k", type=int, help="candidates per face (default: watchlist.top_k)"
    )
    identify.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    _add_device_options(identify, recognition=True)
    identify.set_defaults(handler=cmd_identify)
