"""LFW verification: k-fold cross-validated accuracy of the whole pipeline on real photos.

Every image goes through detect -> align -> quality -> embed exactly as in production. LFW
photos can show other people in the background, so the face nearest the image centre is the
labelled one. When no face is detected at the configured threshold (counted as ``no_face``), the
detector looks again at a low threshold (the photo is known to hold a face); failing that, the
face is assumed at the centre, where LFW's deep-funnelled images put it. Either way the pair is
still scored, as the standard protocol scores every pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import EdgeError
from edge.pipeline.align import TEMPLATE_5, align_points
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.images import read_image
from edge.pipeline.pick import nearest_to_centre
from edge.pipeline.quality import assess
from edge.types import AlignedFace, FloatArray, Image

ImageKey = tuple[str, int]
RETRY_SCORE_THRESHOLD = 0.1


@dataclass(frozen=True)
class Pair:
    first: ImageKey
    second: ImageKey
    same: bool
    fold: int


def read_pairs(pairs_file: Path) -> list[Pair]:
    """Official LFW pairs.txt: a header 'folds<TAB>n', then per fold n matched, n mismatched."""
    try:
        lines = [line.split() for line in pairs_file.read_text().splitlines() if line.strip()]
        folds, per_fold = int(lines[0][0]), int(lines[0][1])
    except (OSError, ValueError, IndexError) as exc:
        raise EdgeError(f"{pairs_file}: not an LFW pairs file ({exc})") from exc
    pairs = []
    for index, fields in enumerate(lines[1:]):
        fold = index // (2 * per_fold)
        if len(fields) == 3:
            name, a, b = fields
            pairs.append(Pair((name, int(a)), (name, int(b)), True, fold))
        elif len(fields) == 4:
            pairs.append(
                Pair((fields[0], int(fields[1])), (fields[2], int(fields[3])), False, fold)
            )
        else:
            raise EdgeError(f"{pairs_file}: line {index + 2} is not a pair")
    if len(pairs) != folds * 2 * per_fold:
        raise EdgeError(f"{pairs_file}: {len(pairs)} pairs, header promises {folds * 2 * per_fold}")
    return pairs


def image_path(data_dir: Path, key: ImageKey) -> Path:
    name, number = key
    return data_dir / "images" / name / f"{name}_{number:04d}.jpg"


def centre_guess(image: Image) -> AlignedFace:
    """Align on where the template's points fall for a face centred at LFW scale."""
    height, width = image.shape[:2]
    face_side = 0.45 * min(height, width)  # LFW deep-funnelled faces span about 45% of the frame
    points = (TEMPLATE_5 / 112 - 0.5) * face_side + np.array([width / 2, height / 2])
    return align_points(image, points.astype(np.float32), TEMPLATE_5)


@dataclass
class EmbeddedImages:
    vectors: dict[ImageKey, FloatArray]
    no_face: int
    found_on_retry: int
    gated: int  # faces below the quality floor (embedded anyway, to score every pair)


def embed_images(
    analyzer: FaceAnalyzer,
    data_dir: Path,
    keys: Iterable[ImageKey],
    progress: Callable[[Iterable[ImageKey]], Iterable[ImageKey]] = lambda it: it,
) -> EmbeddedImages:
    vectors: dict[ImageKey, FloatArray] = {}
    no_face = gated = retried = 0
    floor = analyzer.config.quality.min_quality
    for key in progress(keys):
        image = read_image(image_path(data_dir, key))
        detections = analyzer.detect(image)
        if not detections:
            no_face += 1
            detections = analyzer.detector.detect(image, score_threshold=RETRY_SCORE_THRESHOLD)
            retried += bool(detections)
        if detections:
            (aligned,) = analyzer.align(image, [nearest_to_centre(detections, image)])
        else:
            aligned = centre_guess(image)
        gated += assess(aligned, analyzer.config.quality.min_eye_px).score < floor
        vectors[key] = analyzer.embed([aligned])[0]
    return EmbeddedImages(vectors, no_face, retried, gated)


def best_threshold(scores: npt.NDArray[np.float64], same: npt.NDArray[np.bool_]) -> float:
    """The cosine threshold with the highest accuracy on these pairs (midpoint between scores)."""
    order = np.argsort(scores)
    sorted_scores, sorted_same = scores[order], same[order]
    # Accuracy when everything at index >= i is called 'same': mismatches below + matches above.
    below_different = np.concatenate([[0], np.cumsum(~sorted_same)])
    above_same = np.concatenate([np.cumsum(sorted_same[::-1])[::-1], [0]])
    best = int(np.argmax(below_different + above_same))
    if best == 0:
        return float(sorted_scores[0]) - 1e-6
    if best == len(scores):
        return float(sorted_scores[-1]) + 1e-6
    return float((sorted_scores[best - 1] + sorted_scores[best]) / 2)


def cross_validate(
    scores: npt.NDArray[np.float64], same: npt.NDArray[np.bool_], folds: npt.NDArray[np.int_]
) -> dict[str, Any]:
    """Threshold chosen on the other folds, accuracy measured on the held-out one.

    With a single fold there is nothing to hold out: the threshold is then chosen on the same
    pairs, which flatters the accuracy, and the result says so."""
    accuracies, thresholds = [], []
    single = len(np.unique(folds)) == 1
    for fold in np.unique(folds):
        held_out = folds == fold
        train = held_out if single else ~held_out
        threshold = best_threshold(scores[train], same[train])
        accuracies.append(float(((scores[held_out] >= threshold) == same[held_out]).mean()))
        thresholds.append(threshold)
    return {
        "accuracy": float(np.mean(accuracies)),
        "std": float(np.std(accuracies)),
        "fold_accuracies": accuracies,
        "threshold": float(np.mean(thresholds)),
        "threshold_chosen_on": "the same pairs (one fold only)" if single else "the other folds",
    }


def run(
    analyzer: FaceAnalyzer,
    data_dir: Path,
    progress: Callable[[Iterable[ImageKey]], Iterable[ImageKey]] = lambda it: it,
) -> dict[str, Any]:
    pairs = read_pairs(data_dir / "pairs.txt")
    keys = sorted({p.first for p in pairs} | {p.second for p in pairs})
    embedded = embed_images(analyzer, data_dir, keys, progress)
    scores = np.array(
        [float(embedded.vectors[p.first] @ embedded.vectors[p.second]) for p in pairs]
    )
    same = np.array([p.same for p in pairs])
    result = cross_validate(scores, same, np.array([p.fold for p in pairs]))
    result.update(
        pairs=len(pairs),
        folds=len({p.fold for p in pairs}),
        images=len(keys),
        no_face=embedded.no_face,
        no_face_found_on_retry=embedded.found_on_retry,
        no_face_handling=f"detected again at score >= {RETRY_SCORE_THRESHOLD}, else aligned "
        "on the template at the image centre",
        gated=embedded.gated,
        gated_share=embedded.gated / len(keys),
        backend=analyzer.config.runtime.backend,
        precision=analyzer.config.embedder.precision,
        detector_precision=analyzer.config.detector.precision,
        refiner=analyzer.config.align.refiner,
    )
    return result
