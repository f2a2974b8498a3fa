"""Template index at scale: add rate, memory, bundle size, search latency and recall.

For each size N the benchmark makes N synthetic templates, builds the index exactly as a bundle
stores it (int8 or float16, cosine), saves it, loads it back as a device does, and searches it
with queries that are noisy copies of enrolled templates (cosine 0.7-0.8 to their source, the
range of a real probe against its own enrolled photo), one query at a time, k=1. Recall@1 is
against exact (exhaustive) search over the same stored templates.

Templates are drawn, by default, from a Gaussian with the mean and covariance spectrum of real
MobileFaceNet embeddings (one per LFW identity, shipped in the model's calibration file), in a
random orthonormal basis: their mutual cosines look like those between different people.
``--distribution isotropic`` draws uniformly on the sphere instead, which is the hardest case
for a graph index and not what face embeddings look like; both are reported in
docs/watchlist.md.

Memory is the growth of the process's resident set from opening the saved index until one
exhaustive search has touched every page of it: the whole index resident, as a device holds it
(memory-mapped by default, ``--load copy`` to copy it into memory instead). Bundle bytes per
entry are the index file plus an entries table (measured on a sample of 10,000 synthetic entries
with ids in the list's range) plus manifest and signature.
"""

from __future__ import annotations

import gc
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edge.errors import EdgeError
from edge.watchlist.index import Dtype, IndexParams, TemplateIndex, make_key, quantize

log = logging.getLogger(__name__)

Distribution = Literal["face", "isotropic"]
MANIFEST_AND_SIGNATURE_BYTES = 1600  # a signed manifest.json is about 1.5 kB
ENTRY_SAMPLE = 10_000


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass(frozen=True)
class Spectrum:
    """Mean and covariance eigenvalues of real embeddings, in their eigenbasis."""

    mean: npt.NDArray[np.float64]
    eigenvalues: npt.NDArray[np.float64]


def face_spectrum() -> Spectrum | None:
    from edge.models import EMBEDDING_MODEL
    from edge.watchlist.policy import calibration_path

    try:
        data = json.loads(calibration_path(EMBEDDING_MODEL).read_text(encoding="utf-8"))
        spec = data["spectrum"]
        return Spectrum(
            np.asarray(spec["mean"], dtype=np.float64),
            np.asarray(spec["eigenvalues"], dtype=np.float64),
        )
    except (OSError, KeyError, ValueError, TypeError):
        return None


class Generator:
    """Synthetic unit templates, reproducible from a seed, produced in chunks."""

    def __init__(self, distribution: Distribution, dim: int, seed: int) -> None:
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        self.spectrum: Spectrum | None = None
        self.rotation: npt.NDArray[np.float64] | None = None
        if distribution == "face":
            spectrum = face_spectrum()
            if spectrum is None or len(spectrum.eigenvalues) != dim:
                raise EdgeError(
                    "no embedding spectrum in the model's calibration file: run "
                    "scripts/calibrate-threshold, or use --distribution isotropic"
                )
            self.spectrum = spectrum
            q, r = np.linalg.qr(np.random.default_rng(seed + 1).standard_normal((dim, dim)))
            self.rotation = q * np.sign(np.diag(r))

    def sample(self, n: int) -> npt.NDArray[np.float32]:
        z = self.rng.standard_normal((n, self.dim))
        if self.spectrum is not None and self.rotation is not None:
            z = z * np.sqrt(np.maximum(self.spectrum.eigenvalues, 0)) + self.spectrum.mean
            z = z @ self.rotation.T
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        return z.astype(np.float32)


def noisy_copies(
    rng: np.random.Generator, sources: npt.NDArray[np.float32], low: float, high: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Unit vectors at a cosine drawn from [low, high] to each source (unit) row."""
    cos = rng.uniform(low, high, size=(len(sources), 1)).astype(np.float32)
    noise = rng.standard_normal(sources.shape).astype(np.float32)
    noise -= (noise * sources).sum(axis=1, keepdims=True) * sources
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = cos * sources + np.sqrt(1.0 - cos**2) * noise
    return out.astype(np.float32), cos.ravel()


def _entries_bytes_per_entry(size: int) -> float:
    from datetime import UTC, datetime

    from edge.clock import format_time
    from edge.watchlist.entries import Entry, Template, entries_bytes

    added = format_time(datetime(2025, 1, 1, tzinfo=UTC))
    first = max(size - ENTRY_SAMPLE, 0)
    sample = [
        Entry(
            id=i,
            label=f"person-{i:07d}",
            added=added,
            templates=(Template(make_key(i, 0), f"{i:032x}", 0.87),),
        )
        for i in range(first, first + min(size, ENTRY_SAMPLE))
    ]
    return len(entries_bytes(sample)) / len(sample)


def _percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def _templates(
    gen: Generator, size: int, dtype: Dtype, source_ids: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float32]]:
    """``size`` templates stored as the index stores them (made in chunks, so that the floats
    of a million never sit in memory at once), and the floats of those at ``source_ids``."""
    stored_chunks = []
    chunk = 100_000
    sources = np.zeros((len(source_ids), gen.dim), dtype=np.float32)
    for start in range(0, size, chunk):
        floats = gen.sample(min(chunk, size - start))
        stored_chunks.append(quantize(floats, dtype))
        inside = (source_ids >= start) & (source_ids < start + len(floats))
        sources[inside] = floats[source_ids[inside] - start]
        del floats
    return np.concatenate(stored_chunks), sources


def _search_row(
    index: TemplateIndex,
    ef: int,
    query_vectors: npt.NDArray[np.float32],
    exact_top: npt.NDArray[np.uint64],
    source_keys: npt.NDArray[np.uint64],
) -> dict[str, Any]:
    """Latency and recall of graph search at expansion ``ef``, one query at a time, k=1."""
    n_queries = len(query_vectors)
    index.set_expansion_search(ef)
    for q in query_vectors[: min(100, n_queries)]:  # warm-up
        index.search(q, 1, exact=False)
    latencies = []
    found = np.zeros(n_queries, dtype=np.uint64)
    for row, q in enumerate(query_vectors):
        t0 = time.perf_counter()
        (hits,) = index.search(q, 1, exact=False)
        latencies.append(time.perf_counter() - t0)
        found[row] = hits.keys[0] if len(hits.keys) else np.uint64(2**64 - 1)
    return {
        "expansion_search": ef,
        "search_ms_p50": round(_percentile_ms(latencies, 50), 4),
        "search_ms_p99": round(_percentile_ms(latencies, 99), 4),
        "recall_at_1": float((found == exact_top).mean()),
        "graph_top1_is_source": float((found == source_keys).mean()),
    }


def bench_size(
    size: int,
    *,
    params: IndexParams,
    distribution: Distribution,
    queries: int,
    threads: int,
    seed: int,
    workdir: Path,
    expansion_searches: list[int] | None = None,
    view: bool = True,
) -> list[dict[str, Any]]:
    """One build and load at ``size``; one result row per search expansion."""
    gen = Generator(distribution, params.ndim, seed)
    keys = np.arange(size, dtype=np.uint64) << np.uint64(8)  # entry i, template 0
    n_queries = min(queries, size)
    rng = np.random.default_rng(seed + 2)
    source_ids = np.sort(rng.choice(size, size=n_queries, replace=False))
    stored, sources = _templates(gen, size, params.dtype, source_ids)

    started = time.perf_counter()
    built = TemplateIndex.build(keys, stored, params, threads=threads)
    add_seconds = time.perf_counter() - started
    path = workdir / f"index-{size}.usearch"
    built.save(path)
    file_bytes = path.stat().st_size
    del built, stored
    gc.collect()

    query_vectors, cosines = noisy_copies(rng, sources, 0.7, 0.8)
    before = rss_bytes()
    index = TemplateIndex.load(path, params, size, view=view, lookups=not view)
    exact = index.search(query_vectors, 1, exact=True, threads=threads)  # touches every page
    resident = rss_bytes() - before
    exact_top = np.array([int(h.keys[0]) for h in exact], dtype=np.uint64)
    source_keys = keys[source_ids]
    entries_per = _entries_bytes_per_entry(size)
    common = {
        "size": size,
        "distribution": distribution,
        "dtype": params.dtype,
        "connectivity": params.connectivity,
        "expansion_add": params.expansion_add,
        "build_threads": threads,
        "add_seconds": round(add_seconds, 2),
        "add_rate_per_s": round(size / add_seconds, 1),
        "loaded_as": "memory-mapped view" if view else "copy in memory",
        "resident_bytes": int(resident),
        "resident_mb": round(resident / 2**20, 1),
        "index_file_bytes": int(file_bytes),
        "bundle_bytes_per_entry": round(
            file_bytes / size + entries_per + MANIFEST_AND_SIGNATURE_BYTES / size, 1
        ),
        "queries": n_queries,
        "query_cosine_to_source": [round(float(cosines.min()), 3), round(float(cosines.max()), 3)],
        "exact_top1_is_source": float((exact_top == source_keys).mean()),
    }
    rows = [
        {**common, **_search_row(index, ef, query_vectors, exact_top, source_keys)}
        for ef in expansion_searches or [params.expansion_search]
    ]
    del index
    gc.collect()
    return rows


def run(
    sizes: list[int],
    *,
    params: IndexParams,
    distribution: Distribution = "face",
    queries: int = 1000,
    threads: int = 2,
    seed: int = 0,
    expansion_searches: list[int] | None = None,
    view: bool = True,
) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="edge-bench-index-") as tmp:
        for size in sizes:
            yield from bench_size(
                size,
                params=params,
                distribution=distribution,
                queries=queries,
                threads=threads,
                seed=seed,
                workdir=Path(tmp),
                expansion_searches=expansion_searches,
                view=view,
            )
            (Path(tmp) / f"index-{size}.usearch").unlink()


def format_row(r: dict[str, Any]) -> str:
    return (
        f"{r['size']:>9,} {r['add_rate_per_s']:>10,.0f}/s {r['resident_mb']:>8.1f} MB "
        f"{r['bundle_bytes_per_entry']:>7.1f} B {r['expansion_search']:>5} "
        f"{r['search_ms_p50']:>8.3f} {r['search_ms_p99']:>8.3f} ms {r['recall_at_1']:>8.4f}"
    )


HEADER = (
    f"{'entries':>9} {'add rate':>12} {'resident':>11} {'bundle/e':>9} {'ef':>5} {'p50':>8} "
    f"{'p99':>11} {'recall@1':>8}"
)
