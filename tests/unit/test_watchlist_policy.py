"""Threshold policy: FPIR -> threshold through the shipped impostor calibration; time parsing."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from edge.clock import format_time, parse_time
from edge.errors import TimeFormatError, WatchlistError
from edge.watchlist.calibrate import compute_calibration
from edge.watchlist.policy import (
    ThresholdPolicy,
    calibration_for,
    calibration_path,
    is_expired,
    load_calibration,
    parse_calibration,
    predicted_fpir,
    threshold_for_fpir,
)

MODEL_SHA = "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"


def test_shipped_calibration_is_for_the_shipped_model() -> None:
    from edge.models import catalog

    cal = load_calibration(calibration_path("mobilefacenet"))
    assert cal.model_sha256 == catalog()["mobilefacenet.tflite"].sha256
    assert cal.comparisons > 10_000_000  # every LFW impostor pair
    assert calibration_for("mobilefacenet", cal.model_sha256) is cal
    with pytest.raises(WatchlistError, match="measured on model"):
        calibration_for("mobilefacenet", "0" * 64)


def test_threshold_rises_with_list_size_and_falls_with_target() -> None:
    cal = load_calibration(calibration_path("mobilefacenet"))
    sizes = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000]
    for target in (0.01, 0.001):
        ts = [threshold_for_fpir(cal, target, n) for n in sizes]
        assert all(b >= a for a, b in itertools.pairwise(ts))
        assert ts[0] > 0.2 and ts[-1] < 1.0
    assert threshold_for_fpir(cal, 0.001, 1000) > threshold_for_fpir(cal, 0.01, 1000)


@pytest.mark.parametrize("n", [10, 1000, 100_000])
@pytest.mark.parametrize("target", [0.01, 0.001])
def test_predicted_fpir_inverts_the_threshold(n: int, target: float) -> None:
    cal = load_calibration(calibration_path("mobilefacenet"))
    t = threshold_for_fpir(cal, target, n)
    assert predicted_fpir(cal, t, n) == pytest.approx(target, rel=0.05)


def test_shipped_calibration_check_agrees_at_fpir_one_percent() -> None:
    import json

    doc = json.loads(calibration_path("mobilefacenet").read_text())
    rows = [r for r in doc["check"] if r["target_fpir"] == 0.01]
    assert rows
    for row in rows:  # measured directly on LFW galleries, within sampling noise
        assert row["measured_fpir"] < 0.02


def test_policy_json_round_trip_and_resolution() -> None:
    cal = load_calibration(calibration_path("mobilefacenet"))
    fixed = ThresholdPolicy.fixed(0.61)
    assert ThresholdPolicy.from_json(fixed.to_json()) == fixed
    assert fixed.resolve(None, 10) == 0.61
    fpir = ThresholdPolicy.fpir(0.001)
    assert ThresholdPolicy.from_json(fpir.to_json()) == fpir
    assert fpir.resolve(cal, 50) == threshold_for_fpir(cal, 0.001, 50)
    with pytest.raises(WatchlistError, match="calibration"):
        fpir.resolve(None, 50)
    for bad in ({"mode": "fixed"}, {"mode": "fpir", "target_fpir": 0.1, "x": 1}, [], {"mode": "?"}):
        with pytest.raises((ValueError, KeyError)):
            ThresholdPolicy.from_json(bad)
    with pytest.raises(WatchlistError):
        ThresholdPolicy.fpir(1.5)


def _synthetic_calibration() -> dict[str, object]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((300, 192)).astype(np.float32)
    names = np.repeat([f"id{i:03d}" for i in range(300)], 3)
    vectors = np.repeat(centres, 3, axis=0) + 0.6 * rng.standard_normal((900, 192)).astype(
        np.float32
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return compute_calibration(
        names, vectors, model_name="m", model_sha256="ab" * 32, source={"dataset": "synthetic"}
    )


def test_compute_calibration_from_labelled_embeddings() -> None:
    doc = _synthetic_calibration()
    cal = parse_calibration(doc, "synthetic")
    assert cal.comparisons == 900 * 899 // 2 - 300 * 3
    assert cal.tail_slope < 0
    # independent random vectors: p(t) matches the fraction of impostor pairs above t
    assert 10 ** cal.log10_survival(0.0) == pytest.approx(0.5, abs=0.05)
    spectrum = doc["spectrum"]
    assert len(spectrum["eigenvalues"]) == 192  # type: ignore[index]


def test_malformed_calibration_is_refused() -> None:
    doc = _synthetic_calibration()
    for edit in (
        lambda d: d.update(format="other"),
        lambda d: d["survival"].update(log10_p=list(reversed(d["survival"]["log10_p"]))),
        lambda d: d["tail"].update(slope=1.0),
        lambda d: d.pop("model"),
    ):
        bad = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
        edit(bad)
        with pytest.raises(WatchlistError):
            parse_calibration(bad, "bad")


def test_tail_beyond_the_data_is_extrapolated_monotonically() -> None:
    cal = load_calibration(calibration_path("mobilefacenet"))
    last = cal.thresholds[-1]
    values = [cal.log10_survival(t) for t in np.linspace(last - 0.1, 0.99, 50)]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(values))
    assert math.isfinite(cal.threshold_for(-12))


def test_time_parsing_and_expiry() -> None:
    assert format_time(parse_time("2025-01-31")) == "2025-01-31T00:00:00Z"
    assert format_time(parse_time("2025-01-31T10:00:00+02:00")) == "2025-01-31T08:00:00Z"
    assert parse_time("2025-01-31T08:00:00Z") == datetime(2025, 1, 31, 8, tzinfo=UTC)
    with pytest.raises(TimeFormatError, match="ISO 8601"):
        parse_time("31/01/2025")
    moment = datetime(2025, 1, 31, tzinfo=UTC)
    assert not is_expired(None, moment)
    assert is_expired(moment, moment)
