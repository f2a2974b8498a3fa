"""Matching policy: the decision threshold from a target FPIR, and expiry.

A non-mated search (a stranger's face) raises a false alert when its best score against the
list reaches the threshold ``t``. With ``p(t)`` the probability that one impostor comparison
scores at least ``t`` and ``n`` templates compared independently, the false-positive
identification rate is

    FPIR(n, t) = 1 - (1 - p(t)) ** n

so the threshold for a target FPIR ``f`` is the ``t`` where ``p(t) = 1 - (1 - f) ** (1 / n)``.
``p`` is the model's impostor calibration (``edge/models/calibration-<model>.json``, made by
``scripts/calibrate-threshold`` from LFW): the measured survival function of impostor scores, and
beyond the last measured point a straight-line fit of ``log10 p`` on ``t`` over the tail. ``n``
counts templates, not entries: several photos of one person are compared separately, and
counting each keeps the estimate on the safe side (a higher threshold).

A list may fix its threshold instead (``{"mode": "fixed", "threshold": t}``), signed with it.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge.errors import WatchlistError
from edge.models import MODELS_DIR

CALIBRATION_FORMAT = "edge-impostor-calibration/1"
MAX_THRESHOLD = 0.999


@dataclass(frozen=True)
class Calibration:
    """Impostor-score survival function of one embedding model."""

    model_name: str
    model_sha256: str
    thresholds: tuple[float, ...]  # ascending
    log10_p: tuple[float, ...]  # log10 P(impostor score >= threshold), non-increasing
    tail_intercept: float  # log10 p(t) ~= tail_intercept + tail_slope * t beyond the data
    tail_slope: float
    comparisons: int
    source: dict[str, Any]

    def log10_survival(self, threshold: float) -> float:
        """log10 of the probability that one impostor comparison scores >= ``threshold``."""
        ts = np.asarray(self.thresholds)
        lp = np.asarray(self.log10_p)
        if threshold <= ts[0]:
            return float(lp[0])
        if threshold <= ts[-1]:
            return float(np.interp(threshold, ts, lp))
        return min(float(lp[-1]), self.tail_intercept + self.tail_slope * threshold)

    def threshold_for(self, log10_p_target: float) -> float:
        """Smallest threshold whose per-comparison survival is at most ``10**log10_p_target``."""
        ts = np.asarray(self.thresholds)
        lp = np.asarray(self.log10_p)
        if log10_p_target >= lp[0]:
            return float(ts[0])
        if log10_p_target >= lp[-1]:
            # lp is non-increasing; interpolate on the reversed (increasing) arrays.
            return float(np.interp(-log10_p_target, -lp, ts))
        t = (log10_p_target - self.tail_intercept) / self.tail_slope
        return float(min(max(t, ts[-1]), MAX_THRESHOLD))


def _per_comparison_log10(fpir: float, n: int) -> float:
    """log10 of p with 1 - (1 - p)**n = fpir."""
    n = max(n, 1)
    p = -math.expm1(math.log1p(-fpir) / n)
    return math.log10(p)


def threshold_for_fpir(calibration: Calibration, fpir: float, n_templates: int) -> float:
    if not 0.0 < fpir < 1.0:
        raise WatchlistError(f"target FPIR must be between 0 and 1, got {fpir}")
    return calibration.threshold_for(_per_comparison_log10(fpir, n_templates))


def predicted_fpir(calibration: Calibration, threshold: float, n_templates: int) -> float:
    p = 10.0 ** calibration.log10_survival(threshold)
    return -math.expm1(max(n_templates, 1) * math.log1p(-min(p, 1.0 - 1e-15)))


def parse_calibration(data: Any, where: str) -> Calibration:
    try:
        if data["format"] != CALIBRATION_FORMAT:
            raise ValueError(f"format is {data['format']!r}, expected {CALIBRATION_FORMAT!r}")
        survival = data["survival"]
        ts = tuple(float(x) for x in survival["thresholds"])
        lp = tuple(float(x) for x in survival["log10_p"])
        tail = data["tail"]
        cal = Calibration(
            model_name=str(data["model"]["name"]),
            model_sha256=str(data["model"]["sha256"]),
            thresholds=ts,
            log10_p=lp,
            tail_intercept=float(tail["intercept"]),
            tail_slope=float(tail["slope"]),
            comparisons=int(data["source"]["impostor_comparisons"]),
            source=dict(data["source"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WatchlistError(f"calibration {where} is malformed: {exc}") from exc
    if len(ts) < 2 or len(ts) != len(lp):
        raise WatchlistError(f"calibration {where}: survival arrays are empty or differ in length")
    if any(b <= a for a, b in itertools.pairwise(ts)):
        raise WatchlistError(f"calibration {where}: thresholds must be ascending")
    if any(b > a for a, b in itertools.pairwise(lp)) or lp[0] > 0:
        raise WatchlistError(f"calibration {where}: survival must be <= 1 and non-increasing")
    if cal.tail_slope >= 0:
        raise WatchlistError(f"calibration {where}: tail slope must be negative")
    return cal


def calibration_path(model_name: str) -> Path:
    return MODELS_DIR / f"calibration-{model_name}.json"


@cache
def load_calibration(path: Path) -> Calibration:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WatchlistError(
            f"no impostor calibration at {path} (run scripts/calibrate-threshold)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise WatchlistError(f"cannot read calibration {path}: {exc}") from exc
    return parse_calibration(data, str(path))


def calibration_for(model_name: str, model_sha256: str) -> Calibration:
    """The shipped calibration of a model; refuses one measured on another model."""
    cal = load_calibration(calibration_path(model_name))
    if cal.model_sha256 != model_sha256:
        raise WatchlistError(
            f"calibration for {model_name} was measured on model sha256 "
            f"{cal.model_sha256[:12]}..., not {model_sha256[:12]}... (rerun "
            "scripts/calibrate-threshold)"
        )
    return cal


# --- per-list policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdPolicy:
    """How a list's decision threshold is set: from a target FPIR, or fixed."""

    mode: Literal["fpir", "fixed"]
    target_fpir: float | None = None
    threshold: float | None = None

    @classmethod
    def fpir(cls, target: float) -> ThresholdPolicy:
        if not 0.0 < target < 1.0:
            raise WatchlistError(f"target FPIR must be between 0 and 1, got {target}")
        return cls("fpir", target_fpir=target)

    @classmethod
    def fixed(cls, threshold: float) -> ThresholdPolicy:
        if not -1.0 <= threshold <= 1.0:
            raise WatchlistError(f"threshold must be a cosine in [-1, 1], got {threshold}")
        return cls("fixed", threshold=threshold)

    def to_json(self) -> dict[str, Any]:
        if self.mode == "fixed":
            return {"mode": "fixed", "threshold": self.threshold}
        return {"mode": "fpir", "target_fpir": self.target_fpir}

    @classmethod
    def from_json(cls, data: Any) -> ThresholdPolicy:
        if not isinstance(data, dict):
            raise ValueError("threshold_policy must be an object")
        if data.get("mode") == "fixed" and set(data) == {"mode", "threshold"}:
            return cls.fixed(float(data["threshold"]))
        if data.get("mode") == "fpir" and set(data) == {"mode", "target_fpir"}:
            return cls.fpir(float(data["target_fpir"]))
        raise ValueError(f"threshold_policy {data!r} is neither fpir nor fixed")

    def resolve(self, calibration: Calibration | None, n_templates: int) -> float:
        if self.mode == "fixed":
            assert self.threshold is not None
            return self.threshold
        assert self.target_fpir is not None
        if calibration is None:
            raise WatchlistError("an FPIR policy needs the model's impostor calibration")
        return threshold_for_fpir(calibration, self.target_fpir, n_templates)


# --- expiry -----------------------------------------------------------------------------------


def is_expired(expires: datetime | None, now: datetime) -> bool:
    """An entry or list is expired from its expiry instant on (never matched again)."""
    return expires is not None and now >= expires
