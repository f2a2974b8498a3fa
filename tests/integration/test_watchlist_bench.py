"""The 1:N identification and index benchmarks, on synthetic data (fast) and LFW (if present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from recognition_helpers import LFW_DIR as LFW
from watchlist_helpers import noisy, unit

from edge.bench import identify as bench_identify
from edge.bench import index as bench_index
from edge.bench.identify import EmbeddedFolder, open_set_metrics, threshold_at_fpir
from edge.errors import EdgeError
from edge.watchlist.index import IndexParams


def _folder(identities: int = 60, singles: int = 40, seed: int = 0) -> EmbeddedFolder:
    rng = np.random.default_rng(seed)
    names, numbers, vectors, status = [], [], [], []
    centres = unit(rng, identities + singles)
    for i in range(identities + singles):
        count = 3 if i < identities else 1
        for n in range(count):
            names.append(f"id{i:03d}")
            numbers.append(n + 1)
            vectors.append(noisy(rng, centres[i : i + 1], 0.8)[0])
            status.append(0)
    status[1] = 1  # one mated probe without a face
    return EmbeddedFolder(
        names=np.array(names),
        numbers=np.array(numbers),
        status=np.array(status, dtype=np.int8),
        vectors=np.stack(vectors).astype(np.float32),
        model_name="m",
        model_sha256="ab" * 32,
    )


def test_threshold_at_fpir_allows_at_most_the_target_share() -> None:
    scores = np.arange(1000, dtype=np.float64) / 1000
    t = threshold_at_fpir(scores, 0.01)
    assert (scores >= t).sum() == 10
    assert threshold_at_fpir(scores, 0.0001) > scores.max()
    assert threshold_at_fpir(scores, 1.0) == -1.0


def test_open_set_metrics_follow_the_definitions() -> None:
    is_mate = np.array([True, True, False, True])
    mated = np.array([0.9, 0.4, 0.95, 0.7])
    nonmated = np.array([0.2, 0.65, 0.1])
    m = open_set_metrics(is_mate, mated, nonmated, 0.6)
    # misses: the 0.4 mate (below T) and the wrong top candidate (not the mate, whatever score)
    assert m["misses"] == 2 and m["fnir"] == 0.5
    assert m["false_alarms"] == 1 and m["fpir"] == pytest.approx(1 / 3)


def test_identify_benchmark_on_synthetic_embeddings() -> None:
    data = _folder()
    result = bench_identify.run(data, 50)
    assert result["gallery_size"] == 50
    assert result["mated"] == 50 * 2
    assert result["nonmated"] == 10 * 3 + 40
    assert result["failure_to_acquire"]["mated"] + result["failure_to_acquire"]["nonmated"] == 1
    assert result["rank1"] > 0.95  # cosine 0.8 to a centre: easy at this size
    for key in ("fnir_at_fpir_0.01", "fnir_at_fpir_0.001"):
        assert 0.0 <= result[key] <= 1.0
    assert result["at_fpir_0.01"]["fpir"] <= 0.01
    with pytest.raises(EdgeError, match="between 1 and 60"):
        bench_identify.run(data, 61)
    assert bench_identify.run(data, None)["gallery_size"] == 60
    assert len(list(bench_identify.format_report(result))) >= 4


@pytest.mark.parametrize("distribution", ["face", "isotropic"])
def test_index_benchmark_small(distribution: str) -> None:
    (row,) = bench_index.run(
        [2000],
        params=IndexParams(),
        distribution=distribution,  # type: ignore[arg-type]
        queries=200,
        threads=1,
    )
    assert row["size"] == 2000 and row["queries"] == 200
    assert row["recall_at_1"] >= 0.97
    assert row["exact_top1_is_source"] >= 0.97
    lo, hi = row["query_cosine_to_source"]
    assert 0.7 <= lo <= hi <= 0.8
    assert row["search_ms_p50"] > 0 and row["add_rate_per_s"] > 0
    assert 192 < row["bundle_bytes_per_entry"] < 2000
    assert bench_index.format_row(row)


def test_face_like_templates_look_like_different_people() -> None:
    gen = bench_index.Generator("face", 192, 0)
    v = gen.sample(500)
    cos = v @ v.T
    off = cos[~np.eye(500, dtype=bool)]
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert -0.2 < off.mean() < 0.3 and 0.05 < off.std() < 0.25  # like LFW impostor scores


@pytest.mark.skipif(
    not (LFW / "images").is_dir() or not Path("/tmp/edge-lfw-embeddings.npz").is_file(),
    reason="needs LFW and a cached embedding file (edge bench identify --cache "
    "/tmp/edge-lfw-embeddings.npz) to stay within the test budget",
)
def test_identify_benchmark_on_cached_lfw_embeddings() -> None:
    from edge.config import Config
    from edge.models import catalog

    data = bench_identify._read_cache(
        Path("/tmp/edge-lfw-embeddings.npz"),
        catalog()["mobilefacenet.tflite"].sha256,
        bench_identify._config_tag(Config()),
        len(bench_identify.list_images(LFW)),
    )
    if data is None:
        pytest.skip("the cached embeddings were made with another setup")
    result = bench_identify.run(data, None)
    assert result["gallery_size"] > 800
    assert result["rank1"] > 0.95
    assert result["fnir_at_fpir_0.01"] < 0.2


def test_excluding_identities_removes_their_images() -> None:
    data = _folder()
    trimmed = bench_identify.without(data, {"id000", "id099"})
    assert len(trimmed.names) == len(data.names) - 3 - 1
    assert "id000" not in set(trimmed.names.tolist())
    assert bench_identify.run(trimmed, None)["gallery_size"] == 59
