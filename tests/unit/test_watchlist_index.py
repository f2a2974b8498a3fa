"""The template index: quantisation, build/load, search, determinism, removal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from paths import REPO
from watchlist_helpers import noisy, unit

from edge.errors import BundleError, WatchlistError
from edge.watchlist.index import (
    IndexParams,
    TemplateIndex,
    as_float,
    entry_of,
    make_key,
    quantize,
    templates_digest,
)


def _keys(n: int, templates: int = 1) -> np.ndarray:
    return np.array([make_key(i, t) for i in range(n) for t in range(templates)], dtype=np.uint64)


@pytest.mark.parametrize("dtype", ["i8", "f16"])
def test_quantisation_keeps_direction(dtype: str) -> None:
    v = unit(np.random.default_rng(0), 200)
    stored = quantize(v, dtype)  # type: ignore[arg-type]
    assert stored.dtype == (np.int8 if dtype == "i8" else np.float16)
    cos = (as_float(stored) * v).sum(axis=1)
    assert cos.min() > (0.998 if dtype == "i8" else 0.99999)
    if dtype == "i8":
        assert np.abs(stored).max(axis=1).min() == 127  # full int8 range used per vector


def test_quantise_refuses_nan() -> None:
    with pytest.raises(WatchlistError):
        quantize(np.full((1, 4), np.nan, dtype=np.float32), "i8")


def test_keys_encode_entry_and_template() -> None:
    keys = np.array([make_key(5, 0), make_key(5, 255), make_key(70000, 3)], dtype=np.uint64)
    assert entry_of(keys).tolist() == [5, 5, 70000]
    with pytest.raises(WatchlistError):
        make_key(1, 256)


@pytest.mark.parametrize("dtype", ["i8", "f16"])
def test_search_finds_noisy_copies_with_true_scores(dtype: str) -> None:
    rng = np.random.default_rng(1)
    v = unit(rng, 2000)
    index = TemplateIndex.build(_keys(2000), quantize(v, dtype), IndexParams(dtype=dtype))  # type: ignore[arg-type]
    q = noisy(rng, v[:100], 0.75)
    hits = index.search(q, 3)
    assert [int(h.keys[0]) for h in hits] == [make_key(i, 0) for i in range(100)]
    exact = (as_float(quantize(q, dtype)) * as_float(quantize(v[:100], dtype))).sum(1)  # type: ignore[arg-type]
    got = np.array([h.scores[0] for h in hits])
    assert np.allclose(got, exact, atol=2e-3)
    assert all(np.all(np.diff(h.scores) <= 1e-6) for h in hits)  # best first


def test_exact_and_graph_search_agree_on_small_lists() -> None:
    rng = np.random.default_rng(2)
    v = unit(rng, 500)
    index = TemplateIndex.build(_keys(500), quantize(v, "i8"), IndexParams())
    q = noisy(rng, v[:50], 0.7)
    graph = [h.keys.tolist() for h in index.search(q, 1, exact=False)]
    exact = [h.keys.tolist() for h in index.search(q, 1, exact=True)]
    assert graph == exact


def test_build_is_deterministic_and_order_free(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    keys = _keys(300, 2)
    v = quantize(unit(rng, 600), "i8")
    perm = rng.permutation(600)
    TemplateIndex.build(keys, v, IndexParams()).save(tmp_path / "a")
    TemplateIndex.build(keys[perm], v[perm], IndexParams()).save(tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert templates_digest(keys, v) == templates_digest(keys[perm], v[perm])


def test_load_checks_shape_type_and_count(tmp_path: Path) -> None:
    v = quantize(unit(np.random.default_rng(4), 10), "i8")
    TemplateIndex.build(_keys(10), v, IndexParams()).save(tmp_path / "i")
    loaded = TemplateIndex.load(tmp_path / "i", IndexParams(), 10)
    assert np.array_equal(loaded.vectors(loaded.keys()), v)
    with pytest.raises(BundleError, match="holds 10 templates"):
        TemplateIndex.load(tmp_path / "i", IndexParams(), 11)
    with pytest.raises(BundleError) as err:
        TemplateIndex.load(tmp_path / "i", IndexParams(dtype="f16"), 10)
    assert err.value.check == "index"
    (tmp_path / "junk").write_bytes(b"\0" * 100)
    with pytest.raises(BundleError) as err:
        TemplateIndex.load(tmp_path / "junk", IndexParams(), 10)
    assert err.value.check == "index"


def test_removed_templates_are_not_found() -> None:
    rng = np.random.default_rng(5)
    v = unit(rng, 100)
    index = TemplateIndex.build(_keys(100), quantize(v, "i8"), IndexParams())
    index.remove(np.array([make_key(0, 0)], dtype=np.uint64))
    for exact in (True, False):
        (hits,) = index.search(v[0], 5, exact=exact)
        assert make_key(0, 0) not in hits.keys.tolist()
    assert len(index) == 99


def test_build_refuses_bad_input() -> None:
    v = quantize(unit(np.random.default_rng(6), 4), "i8")
    with pytest.raises(WatchlistError, match="duplicate"):
        TemplateIndex.build(np.zeros(4, dtype=np.uint64), v, IndexParams())
    with pytest.raises(WatchlistError, match="index stores f16"):
        TemplateIndex.build(_keys(4), v, IndexParams(dtype="f16"))
    with pytest.raises(WatchlistError, match="dimensions"):
        TemplateIndex.build(_keys(4), v, IndexParams()).search(np.zeros(5), 1)


def test_usearch_then_onnxruntime_import_does_not_crash() -> None:
    # usearch 2.26 loaded before onnxruntime makes onnxruntime segfault on import; the index
    # module loads onnxruntime first. Run in a fresh interpreter: a crash would kill pytest.
    code = "import edge.watchlist.index, onnxruntime; print('ok')"
    root = REPO
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-500:]
