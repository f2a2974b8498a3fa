"""Open-set 1:N identification on an LFW-style folder (``images/<Name>/<Name>_NNNN.jpg``).

Protocol (NIST FRVT/FRTE 1:N terms):

- Gallery: ``N`` identities that have at least two images, chosen at random with a fixed seed;
  each is enrolled with its first usable image (a face was found and passed the quality floor:
  enrollment refuses the others). The gallery is a real :class:`TemplateIndex`, int8, searched
  exhaustively (exact), so scores are the ones a device computes.
- Mated searches: every other image of an enrolled identity. Non-mated searches: every image of
  an identity that is not enrolled.
- Every image goes through the production pipeline (detect, align, quality gate, embed), with
  the face nearest the image centre taken as the labelled one (LFW photos can show other people).
  A search whose image yields no usable face is a failure to acquire: it counts as a miss when
  mated and as no alarm when non-mated, and the counts are reported.
- rank-1: share of mated searches whose top candidate is the mate. FPIR(T): share of non-mated
  searches whose top score is >= T. FNIR(T): share of mated searches whose mate is not returned
  at rank 1 with a score >= T. ``fnir_at_fpir_X`` uses the lowest T with FPIR(T) <= X measured
  on these non-mated searches; the same is also given at the threshold the shipped calibration
  predicts for X at this gallery size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import EdgeError
from edge.watchlist.index import IndexParams, TemplateIndex, make_key, quantize

log = logging.getLogger(__name__)

OK, NO_FACE, LOW_QUALITY, UNREADABLE = 0, 1, 2, 3
STATUS_NAMES = {OK: "ok", NO_FACE: "no face", LOW_QUALITY: "low quality", UNREADABLE: "unreadable"}
FPIR_TARGETS = (0.01, 0.001)
CACHE_FORMAT = "edge-lfw-embeddings/1"


@dataclass(frozen=True)
class EmbeddedFolder:
    """Every image of the folder: identity, status and (when usable) its embedding."""

    names: npt.NDArray[np.str_]
    numbers: npt.NDArray[np.int64]
    status: npt.NDArray[np.int8]
    vectors: npt.NDArray[np.float32]  # (n, d); zeros where status != OK
    model_name: str
    model_sha256: str

    @property
    def usable(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.status == OK)


def list_images(data_dir: Path) -> list[tuple[str, int, Path]]:
    images = data_dir / "images"
    if not images.is_dir():
        raise EdgeError(f"{data_dir}: no images/ folder (expected images/<Name>/<Name>_NNNN.jpg)")
    out = []
    for person in sorted(p for p in images.iterdir() if p.is_dir()):
        for photo in sorted(person.glob("*.jpg")):
            stem = photo.stem
            number = stem.rsplit("_", 1)[-1]
            out.append((person.name, int(number) if number.isdigit() else 0, photo))
    if not out:
        raise EdgeError(f"{data_dir}: no images found")
    return out


def _config_tag(config: Any) -> str:
    return (
        f"{config.runtime.backend}/{config.embedder.precision}/{config.detector.model}/"
        f"{config.align.refiner}/q{config.quality.min_quality}"
    )


def embed_folder(
    data_dir: Path,
    config: Any,
    cache: Path | None = None,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda it: it,
) -> EmbeddedFolder:
    """Run the production pipeline on every image (or read a cache made with the same setup)."""
    from edge.pipeline.analyzer import FaceAnalyzer
    from edge.pipeline.images import read_image
    from edge.pipeline.pick import nearest_to_centre

    images = list_images(data_dir)
    analyzer = FaceAnalyzer.from_config(config)
    tag = _config_tag(config)
    if cache is not None and cache.is_file():
        loaded = _read_cache(cache, analyzer.model_sha256, tag, len(images))
        if loaded is not None:
            return loaded
    status = np.zeros(len(images), dtype=np.int8)
    vectors = np.zeros((len(images), 192), dtype=np.float32)
    for row, (_name, _number, path) in enumerate(progress(images)):
        try:
            image = read_image(path)
        except EdgeError:
            status[row] = UNREADABLE
            continue
        faces = analyzer.analyze(image)
        if not faces:
            status[row] = NO_FACE
            continue
        face = nearest_to_centre(faces, image)
        if face.embedding is None:
            status[row] = LOW_QUALITY
            continue
        vectors[row] = face.embedding
    result = EmbeddedFolder(
        names=np.array([name for name, _, _ in images]),
        numbers=np.array([number for _, number, _ in images], dtype=np.int64),
        status=status,
        vectors=vectors,
        model_name=analyzer.model_name,
        model_sha256=analyzer.model_sha256,
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("wb") as fh:
            np.savez_compressed(
                fh,
                format=np.array(CACHE_FORMAT),
                tag=np.array(tag),
                model_name=np.array(result.model_name),
                model_sha256=np.array(result.model_sha256),
                names=result.names,
                numbers=result.numbers,
                status=result.status,
                vectors=result.vectors,
            )
    return result


def _read_cache(cache: Path, model_sha256: str, tag: str, count: int) -> EmbeddedFolder | None:
    try:
        with np.load(cache) as data:
            if (
                str(data["format"]) != CACHE_FORMAT
                or str(data["model_sha256"]) != model_sha256
                or str(data["tag"]) != tag
                or len(data["names"]) != count
            ):
                log.warning("embedding cache %s was made with another setup: recomputing", cache)
                return None
            return EmbeddedFolder(
                names=data["names"],
                numbers=data["numbers"],
                status=data["status"],
                vectors=data["vectors"],
                model_name=str(data["model_name"]),
                model_sha256=str(data["model_sha256"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        log.warning("embedding cache %s unreadable (%s): recomputing", cache, exc)
        return None


# --- the benchmark ----------------------------------------------------------------------------


def _group(names: npt.NDArray[np.str_]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for row, name in enumerate(names.tolist()):
        groups.setdefault(name, []).append(row)
    return groups


def eligible_identities(data: EmbeddedFolder) -> list[str]:
    """Identities with >= 2 images whose first usable image can be enrolled."""
    usable = data.usable
    return sorted(
        name
        for name, rows in _group(data.names).items()
        if len(rows) >= 2 and any(usable[r] for r in rows)
    )


def threshold_at_fpir(nonmated_top: npt.NDArray[np.float64], target: float) -> float:
    """Lowest threshold T with (share of non-mated top scores >= T) <= target."""
    scores = np.sort(nonmated_top)[::-1]
    allowed = int(np.floor(target * len(scores) + 1e-9))
    if allowed >= len(scores):
        return -1.0
    return float(np.nextafter(scores[allowed], np.inf))


def open_set_metrics(
    mated_top_is_mate: npt.NDArray[np.bool_],
    mated_top_score: npt.NDArray[np.float64],
    nonmated_top_score: npt.NDArray[np.float64],
    threshold: float,
) -> dict[str, float | int]:
    hits = mated_top_is_mate & (mated_top_score >= threshold)
    alarms = nonmated_top_score >= threshold
    return {
        "threshold": round(threshold, 4),
        "fnir": float(1.0 - hits.mean()) if len(hits) else float("nan"),
        "fpir": float(alarms.mean()) if len(alarms) else float("nan"),
        "misses": int((~hits).sum()),
        "false_alarms": int(alarms.sum()),
    }


def without(data: EmbeddedFolder, names: set[str]) -> EmbeddedFolder:
    """The same images without the identities in ``names`` (e.g. known labelling errors)."""
    keep = ~np.isin(data.names, sorted(names))
    return EmbeddedFolder(
        names=data.names[keep],
        numbers=data.numbers[keep],
        status=data.status[keep],
        vectors=data.vectors[keep],
        model_name=data.model_name,
        model_sha256=data.model_sha256,
    )


def run(
    data: EmbeddedFolder,
    gallery_size: int | None,
    *,
    seed: int = 0,
    calibration: Any = None,
) -> dict[str, Any]:
    """The 1:N benchmark on embedded images; ``gallery_size`` None takes every eligible identity."""
    eligible = eligible_identities(data)
    if gallery_size is None:
        gallery_size = len(eligible)
    if not 1 <= gallery_size <= len(eligible):
        raise EdgeError(
            f"gallery size {gallery_size}: between 1 and {len(eligible)} identities qualify "
            "(at least 2 images, one of them usable)"
        )
    rng = np.random.default_rng(seed)
    enrolled = sorted(rng.choice(eligible, size=gallery_size, replace=False).tolist())
    groups = _group(data.names)
    usable = data.usable
    gallery_rows = [next(r for r in groups[name] if usable[r]) for name in enrolled]
    mated_rows = [
        (r, entry)
        for entry, name in enumerate(enrolled)
        for r in groups[name]
        if r != gallery_rows[entry]
    ]
    enrolled_set = set(enrolled)
    nonmated_rows = [r for name, rows in groups.items() if name not in enrolled_set for r in rows]

    params = IndexParams(ndim=data.vectors.shape[1], dtype="i8")
    keys = np.array([make_key(e, 0) for e in range(gallery_size)], dtype=np.uint64)
    index = TemplateIndex.build(keys, quantize(data.vectors[gallery_rows], "i8"), params, threads=2)

    def top1(rows: list[int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        entry = np.full(len(rows), -1, dtype=np.int64)
        score = np.full(len(rows), -np.inf)
        ok = np.array([usable[r] for r in rows], dtype=bool)
        if ok.any():
            hits = index.search(data.vectors[np.asarray(rows)[ok]], 1, exact=True)
            entry[ok] = [int(h.keys[0]) >> 8 for h in hits]
            score[ok] = [float(h.scores[0]) for h in hits]
        return entry, score

    mated_entry, mated_score = top1([r for r, _ in mated_rows])
    mate = np.array([e for _, e in mated_rows], dtype=np.int64)
    is_mate = mated_entry == mate
    _, nonmated_score = top1(nonmated_rows)

    result: dict[str, Any] = {
        "gallery_size": gallery_size,
        "eligible_identities": len(eligible),
        "mated": len(mated_rows),
        "nonmated": len(nonmated_rows),
        "rank1": float(is_mate.mean()) if len(is_mate) else float("nan"),
        "failure_to_acquire": {
            "mated": int(sum(not usable[r] for r, _ in mated_rows)),
            "nonmated": int(sum(not usable[r] for r in nonmated_rows)),
        },
        "images": {STATUS_NAMES[s]: int((data.status == s).sum()) for s in STATUS_NAMES},
        "model": data.model_name,
        "seed": seed,
        "fnir_rank": 1,
    }
    for target in FPIR_TARGETS:
        t = threshold_at_fpir(nonmated_score, target)
        metrics = open_set_metrics(is_mate, mated_score, nonmated_score, t)
        result[f"fnir_at_fpir_{target}"] = metrics["fnir"]
        result[f"at_fpir_{target}"] = metrics
        if calibration is not None:
            from edge.watchlist.policy import threshold_for_fpir

            ct = threshold_for_fpir(calibration, target, gallery_size)
            result[f"calibrated_at_fpir_{target}"] = open_set_metrics(
                is_mate, mated_score, nonmated_score, ct
            )
    return result


def format_report(result: dict[str, Any]) -> Iterator[str]:
    yield (
        f"1:N open-set identification, gallery {result['gallery_size']} identities "
        f"(of {result['eligible_identities']} eligible), seed {result['seed']}"
    )
    fta = result["failure_to_acquire"]
    yield (
        f"  searches: {result['mated']} mated ({fta['mated']} without a usable face), "
        f"{result['nonmated']} non-mated ({fta['nonmated']} without a usable face)"
    )
    yield f"  rank-1 identification rate: {result['rank1']:.4f}"
    for target in FPIR_TARGETS:
        m = result[f"at_fpir_{target}"]
        yield (
            f"  FNIR @ FPIR={target}: {m['fnir']:.4f}  (threshold {m['threshold']:.4f}, "
            f"{m['misses']} misses, {m['false_alarms']} false alarms, FPIR {m['fpir']:.4f})"
        )
        c = result.get(f"calibrated_at_fpir_{target}")
        if c is not None:
            yield (
                f"    with the calibrated threshold {c['threshold']:.4f}: FPIR {c['fpir']:.4f}, "
                f"FNIR {c['fnir']:.4f}"
            )
