"""Build the impostor-score calibration of an embedding model from labelled embeddings.

Used by ``scripts/calibrate-threshold`` (on LFW). Every pair of usable images of two different
identities is one impostor comparison, scored exactly as a device scores it (cosine of int8
templates). The file records:

- ``survival``: log10 P(impostor score >= t) on a 0.005 grid, up to the last threshold that at
  least ``MIN_TAIL_COUNT`` impostor pairs reach (beyond that, a handful of pairs decide it and
  most of them, on LFW, are one person filed under two names or one photo filed twice);
- ``tail``: a least-squares line of log10 p on t over ``10**-5 <= p <= 10**-3``, used beyond the
  survival grid. The measured tail bends down faster than a line, so the line over-states p
  there and the thresholds it gives err high (fewer false alerts than targeted);
- ``genuine``: P(genuine score >= t) on the whole grid, to show what a threshold costs (LFW
  genuine pairs: same person, different photo);
- ``spectrum``: mean and covariance eigenvalues of one embedding per identity (in the
  eigenbasis), which ``edge bench index`` uses to draw face-like synthetic templates;
- ``check``: FPIR measured directly on random galleries of N identities (one image each,
  non-mated probes from the other identities) next to the prediction 1 - (1 - p(t))**N.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edge.watchlist.index import as_float, quantize
from edge.watchlist.policy import CALIBRATION_FORMAT, parse_calibration, predicted_fpir

GRID_STEP = 0.005
GRID_START = -0.2
MIN_TAIL_COUNT = 100
FIT_RANGE = (-5.0, -3.0)  # log10 p
HIST_BINS = 4000  # 0.0005 wide on [-1, 1]
CHECK_SIZES = (100, 300, 1000, 2000)
CHECK_FPIRS = (0.01, 0.001)


def _score_histograms(
    vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], block: int = 1000
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Histograms of impostor and genuine scores over all unordered pairs."""
    edges = np.linspace(-1.0, 1.0, HIST_BINS + 1)
    impostor = np.zeros(HIST_BINS, dtype=np.int64)
    genuine = np.zeros(HIST_BINS, dtype=np.int64)
    n = len(vectors)
    columns = np.arange(n)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        scores = vectors[rows] @ vectors.T
        upper = columns[None, :] > rows[:, None]
        same = ids[rows][:, None] == ids[None, :]
        impostor += np.histogram(scores[upper & ~same], edges)[0]
        genuine += np.histogram(scores[upper & same], edges)[0]
    return impostor, genuine, edges


def _survival_at(
    counts: npt.NDArray[np.int64], edges: npt.NDArray[np.float64], grid: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Number of scores >= each grid threshold (grid points fall on bin edges)."""
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0]])
    return np.asarray(tail[np.searchsorted(edges, grid - 1e-9)], dtype=np.int64)


def compute_calibration(
    names: npt.NDArray[np.str_],
    vectors: npt.NDArray[np.float32],
    *,
    model_name: str,
    model_sha256: str,
    source: dict[str, Any],
    seed: int = 0,
) -> dict[str, Any]:
    """The calibration document (see the module docstring) for usable embeddings."""
    stored = as_float(quantize(vectors, "i8"))
    _, ids = np.unique(names, return_inverse=True)
    ids = ids.astype(np.int64)
    impostor, genuine, edges = _score_histograms(stored, ids)
    total_imp, total_gen = int(impostor.sum()), int(genuine.sum())
    if total_imp == 0:
        raise ValueError("no impostor pairs: need at least two identities")

    grid = np.round(np.arange(GRID_START, 1.0 + 1e-9, GRID_STEP), 6)
    imp_counts = _survival_at(impostor, edges, grid)
    keep = imp_counts >= MIN_TAIL_COUNT
    last = int(np.nonzero(keep)[0].max())
    grid_kept = grid[: last + 1]
    log10_p = np.log10(imp_counts[: last + 1] / total_imp)

    fit_mask = (log10_p >= FIT_RANGE[0]) & (log10_p <= FIT_RANGE[1])
    if fit_mask.sum() < 3:
        fit_mask = np.zeros_like(log10_p, dtype=bool)
        fit_mask[-min(10, len(log10_p)) :] = True
    slope, intercept = np.polyfit(grid_kept[fit_mask], log10_p[fit_mask], 1)
    gen_counts = _survival_at(genuine, edges, grid)

    # One embedding per identity (its first usable image): the between-person distribution.
    first = np.unique(ids, return_index=True)[1]
    per_person = vectors[first].astype(np.float64)
    mean = per_person.mean(axis=0)
    cov = np.cov(per_person, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    mean_eig = eigenvectors.T @ mean

    doc: dict[str, Any] = {
        "format": CALIBRATION_FORMAT,
        "model": {"name": model_name, "sha256": model_sha256},
        "score": "cosine of int8 templates (as a device scores)",
        "source": {
            **source,
            "images_used": len(vectors),
            "identities": int(ids.max()) + 1,
            "impostor_comparisons": total_imp,
            "genuine_comparisons": total_gen,
        },
        "survival": {
            "thresholds": [round(float(t), 4) for t in grid_kept],
            "log10_p": [round(float(x), 5) for x in log10_p],
        },
        "tail": {
            "slope": round(float(slope), 5),
            "intercept": round(float(intercept), 5),
            "fit_log10_p_range": list(FIT_RANGE),
            "min_count": MIN_TAIL_COUNT,
        },
        "genuine": {
            "thresholds": [round(float(t), 4) for t in grid],
            "survival": [round(float(c) / max(total_gen, 1), 5) for c in gen_counts],
        },
        "spectrum": {
            "per": "identity (first usable image)",
            "mean": [round(float(x), 7) for x in mean_eig],
            "eigenvalues": [round(float(x), 9) for x in eigenvalues],
        },
    }
    doc["check"] = _check(doc, stored, ids, seed)
    return doc


def _check(
    doc: dict[str, Any], stored: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], seed: int
) -> list[dict[str, Any]]:
    """Measured FPIR on random galleries against the calibration's prediction."""
    from edge.watchlist.policy import threshold_for_fpir

    cal = parse_calibration(doc, "check")
    rng = np.random.default_rng(seed)
    identities = np.unique(ids)
    first = np.unique(ids, return_index=True)[1]
    out = []
    for size in CHECK_SIZES:
        if size >= len(identities):
            continue
        chosen = rng.choice(identities, size=size, replace=False)
        gallery = stored[first[chosen]]
        probes = stored[~np.isin(ids, chosen)]
        top = np.max(probes @ gallery.T, axis=1)
        for target in CHECK_FPIRS:
            t = threshold_for_fpir(cal, target, size)
            out.append(
                {
                    "gallery_size": size,
                    "target_fpir": target,
                    "threshold": round(t, 4),
                    "predicted_fpir": round(predicted_fpir(cal, t, size), 6),
                    "measured_fpir": round(float((top >= t).mean()), 6),
                    "nonmated_probes": len(probes),
                }
            )
    return out
