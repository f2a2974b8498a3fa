"""``edge detect``, ``edge compare`` and ``edge embed``: the recognition core on still images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge.cli.args import Subparsers, add_common, config_from_args
from edge.cli.progress import progress_bar
from edge.errors import EdgeError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.images import read_image
from edge.types import Face

# Cosine similarity at which `edge compare` calls two faces the same person: the threshold that
# maximised 5-fold cross-validated LFW accuracy (`edge bench lfw` reports 0.374 for fp32).
# Watchlist matching does not use it: its threshold comes from the list's size and target FPIR.
SAME_PERSON_THRESHOLD = 0.37


def _round(values: Any, digits: int = 2) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


def face_record(face: Face, with_embedding: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        "box": _round(face.box),
        "score": round(face.score, 4),
        "quality": round(face.quality, 4),
    }
    if with_embedding:
        record["embedding"] = (
            None if face.embedding is None else [round(float(v), 6) for v in face.embedding]
        )
    else:
        record["keypoints"] = [_round(p) for p in face.detection.keypoints]
    return record


def cmd_detect(args: argparse.Namespace) -> int:
    analyzer = FaceAnalyzer.from_config(config_from_args(args))
    image = read_image(args.image)
    faces = analyzer.analyze(image)
    if args.json:
        print(
            json.dumps({"path": str(args.image), "faces": [face_record(f, False) for f in faces]})
        )
        return 0
    print(f"{args.image}: {len(faces)} face(s)")
    for i, face in enumerate(faces):
        x1, y1, x2, y2 = face.box
        print(
            f"  #{i} box=({x1:.0f},{y1:.0f})-({x2:.0f},{y2:.0f}) score={face.score:.3f} "
            f"quality={face.quality:.2f}"
        )
    return 0


def best_face(faces: list[Face], path: Path) -> Face:
    """The largest face that passed the quality gate: the one a person means by 'this photo'."""
    usable = [f for f in faces if f.embedding is not None]
    if not usable:
        reason = "no face found" if not faces else "no face passes the quality gate"
        raise EdgeError(f"{path}: {reason}")
    return max(usable, key=lambda f: f.detection.width)


def cmd_compare(args: argparse.Namespace) -> int:
    analyzer = FaceAnalyzer.from_config(config_from_args(args))
    face_a = best_face(analyzer.analyze(read_image(args.image_a)), args.image_a)
    face_b = best_face(analyzer.analyze(read_image(args.image_b)), args.image_b)
    assert face_a.embedding is not None and face_b.embedding is not None
    similarity = float(face_a.embedding @ face_b.embedding)
    same = similarity >= SAME_PERSON_THRESHOLD
    if args.json:
        print(
            json.dumps(
                {
                    "similarity": round(similarity, 4),
                    "threshold": SAME_PERSON_THRESHOLD,
                    "same_person": same,
                }
            )
        )
    else:
        verdict = "same person" if same else "different people"
        print(f"similarity {similarity:.3f} (threshold {SAME_PERSON_THRESHOLD}): {verdict}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    analyzer = FaceAnalyzer.from_config(config_from_args(args))
    status = 0
    for path in progress_bar(args.images, "embed"):
        try:
            faces = analyzer.analyze(read_image(path))
            line: dict[str, Any] = {
                "path": str(path),
                "faces": [face_record(f, True) for f in faces],
            }
        except EdgeError as exc:
            line = {"path": str(path), "error": str(exc)}
            status = 2
        if args.json:
            print(json.dumps(line), flush=True)
        elif "error" in line:
            print(f"{path}: error: {line['error']}", file=sys.stderr)
        else:
            print(f"{path}: {len(line['faces'])} face(s) embedded")
    return status


def register(subparsers: Subparsers) -> None:
    detect = subparsers.add_parser("detect", help="find faces in an image")
    detect.add_argument("image", type=Path, help="photo or frame (JPEG, PNG, BMP, WebP, TIFF)")
    detect.add_argument("--json", action="store_true", help="one JSON object")
    add_common(detect, recognition=True)
    detect.set_defaults(handler=cmd_detect)

    compare = subparsers.add_parser("compare", help="are two photos the same person?")
    compare.add_argument("image_a", type=Path, help="first photo (its largest usable face)")
    compare.add_argument("image_b", type=Path, help="second photo (its largest usable face)")
    compare.add_argument("--json", action="store_true", help="one JSON object")
    add_common(compare, recognition=True)
    compare.set_defaults(handler=cmd_compare)

    embed = subparsers.add_parser("embed", help="embeddings of every face, one JSON line per image")
    embed.add_argument("images", type=Path, nargs="+", help="photos to embed, one JSON line each")
    embed.add_argument("--json", action="store_true", help="JSON lines (the useful form)")
    add_common(embed, recognition=True)
    embed.set_defaults(
        handler=cmd_embed,
        exit_codes={2: "on an error, or when any image could not be read (the rest are embedded)"},
    )
