"""The template index: a usearch HNSW graph over stored face templates, cosine metric.

Templates are stored as int8 (default) or float16. Quantisation is done here, not by usearch,
so that it is exact and repeatable: an int8 template is ``round(v / max|v| * 127)``, which keeps
the direction (all cosine cares about) with the finest step the type allows. Queries are
quantised the same way, and the score of a match is the cosine of the two stored vectors.

Keys encode their entry: ``key = entry_id << 8 | template_number``, so a hit maps to its entry
without a lookup table and one entry holds at most 256 templates.

Indexes written for bundles are built single-threaded in ascending key order, which makes the
graph (and the file) a function of the templates alone: a device that applies a delta and
rebuilds gets the very index the hub would ship as a full bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

# usearch 2.26's extension carries its own libstdc++ locale symbols: when it is loaded before
# onnxruntime, onnxruntime crashes (SIGSEGV) in its static initialisers. Loading onnxruntime
# first is safe, so do that whenever it is installed (tests/test_watchlist_index.py checks).
with contextlib.suppress(ImportError):
    import onnxruntime  # noqa: F401

from usearch.compiled import MetricKind, ScalarKind
from usearch.index import BatchMatches, Index

from edge.errors import BundleError, WatchlistError

Dtype = Literal["i8", "f16"]
DTYPES: tuple[Dtype, ...] = ("i8", "f16")
METRIC = "cos"
TEMPLATE_BITS = 8
MAX_TEMPLATES_PER_ENTRY = 1 << TEMPLATE_BITS
MAX_ENTRY_ID = (1 << 48) - 1

KeyArray = npt.NDArray[np.uint64]
StoredArray = npt.NDArray[Any]  # int8 or float16 rows, see `numpy_dtype`
FloatArray = npt.NDArray[np.float32]

_SCALAR = {"i8": ScalarKind.I8, "f16": ScalarKind.F16}
_NUMPY = {"i8": np.int8, "f16": np.float16}


def make_key(entry_id: int, template: int) -> int:
    if not 0 <= template < MAX_TEMPLATES_PER_ENTRY:
        raise WatchlistError(f"an entry holds at most {MAX_TEMPLATES_PER_ENTRY} templates")
    if not 0 <= entry_id <= MAX_ENTRY_ID:
        raise WatchlistError(f"entry id {entry_id} out of range")
    return (entry_id << TEMPLATE_BITS) | template


def entry_of(keys: KeyArray) -> KeyArray:
    return np.right_shift(keys, np.uint64(TEMPLATE_BITS))


def numpy_dtype(dtype: Dtype) -> np.dtype[Any]:
    return np.dtype(_NUMPY[dtype])


def quantize(vectors: npt.ArrayLike, dtype: Dtype) -> StoredArray:
    """Float vectors (n, d) or (d,) -> the stored type. Direction is kept; length is not."""
    arr = np.asarray(vectors, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise WatchlistError("embedding contains NaN or infinity")
    if dtype == "f16":
        norms = np.linalg.norm(arr, axis=-1, keepdims=True)
        return np.asarray(arr / np.maximum(norms, 1e-12), dtype=np.float16)
    peak = np.max(np.abs(arr), axis=-1, keepdims=True)
    scaled = np.rint(arr / np.maximum(peak, 1e-12) * 127.0)
    return np.asarray(np.clip(scaled, -127, 127), dtype=np.int8)


def as_float(stored: StoredArray) -> FloatArray:
    """Stored vectors back to float32 unit vectors (for exact reference scores)."""
    arr = np.asarray(stored, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    return np.asarray(arr / np.maximum(norms, 1e-12), dtype=np.float32)


def templates_digest(keys: KeyArray, vectors: StoredArray) -> str:
    """sha256 over the templates in ascending key order: key (u64 LE) then the vector bytes."""
    order = np.argsort(keys, kind="stable")
    k = np.ascontiguousarray(keys[order].astype("<u8"))
    v = np.ascontiguousarray(vectors[order])
    digest = hashlib.sha256()
    digest.update(f"n={len(k)};d={v.shape[1] if v.ndim == 2 else 0};{v.dtype.str}|".encode())
    step = 65536
    for start in range(0, len(k), step):
        rows = np.concatenate(
            [
                k[start : start + step].view(np.uint8).reshape(-1, 8),
                v[start : start + step].view(np.uint8).reshape(len(k[start : start + step]), -1),
            ],
            axis=1,
        )
        digest.update(rows.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class IndexParams:
    ndim: int = 192
    dtype: Dtype = "i8"
    connectivity: int = 20
    expansion_add: int = 128
    expansion_search: int = 96


@dataclass(frozen=True)
class Hits:
    """Search results for one query, best first: template keys and cosine scores."""

    keys: KeyArray
    scores: FloatArray


class TemplateIndex:
    """A usearch index of templates with exact quantisation and key -> entry mapping."""

    def __init__(self, index: Index, params: IndexParams) -> None:
        self._index = index
        self.params = params
        self.exact_max = 0
        self.read_only = False
        self.lookups = True

    # --- construction -----------------------------------------------------------------------

    @staticmethod
    def _new(params: IndexParams, lookups: bool = True) -> Index:
        if params.dtype not in DTYPES:
            raise WatchlistError(f"index dtype must be one of {', '.join(DTYPES)}")
        return Index(
            ndim=params.ndim,
            metric=METRIC,
            dtype=_SCALAR[params.dtype],
            connectivity=params.connectivity,
            expansion_add=params.expansion_add,
            expansion_search=params.expansion_search,
            enable_key_lookups=lookups,
        )

    @classmethod
    def build(
        cls,
        keys: KeyArray,
        vectors: StoredArray,
        params: IndexParams,
        *,
        threads: int = 1,
    ) -> TemplateIndex:
        """Index ``vectors`` (already in the stored type). ``threads=1`` is deterministic."""
        keys = np.asarray(keys, dtype=np.uint64)
        if vectors.dtype != numpy_dtype(params.dtype):
            raise WatchlistError(f"vectors are {vectors.dtype}, index stores {params.dtype}")
        if vectors.ndim != 2 or vectors.shape[1] != params.ndim or len(vectors) != len(keys):
            raise WatchlistError(
                f"expected ({len(keys)}, {params.ndim}) vectors, got {vectors.shape}"
            )
        if len(np.unique(keys)) != len(keys):
            raise WatchlistError("duplicate template keys")
        order = np.argsort(keys, kind="stable")
        index = cls._new(params)
        if len(keys):
            index.add(
                np.ascontiguousarray(keys[order]),
                np.ascontiguousarray(vectors[order]),
                threads=threads,
            )
        return cls(index, params)

    @classmethod
    def load(
        cls,
        path: Path,
        params: IndexParams,
        expected_count: int,
        *,
        view: bool = False,
        lookups: bool = True,
    ) -> TemplateIndex:
        """Open an index file; any problem is a :class:`BundleError` of check ``index``.

        ``view=True`` memory-maps the file instead of copying it: less memory (no copy, pages
        shared with the page cache) and an instant start, but the index is then read-only
        (:meth:`remove` refuses; callers filter instead). ``lookups=False`` skips the key ->
        slot table (about 32 bytes a template): search still works, :meth:`vectors` and
        :meth:`remove` do not.
        """
        index = cls._new(params, lookups)
        try:
            if view:
                index.view(str(path))
            else:
                index.load(str(path))
        except (RuntimeError, ValueError, OSError) as exc:
            raise BundleError("index", f"{path.name} cannot be loaded: {exc}") from exc
        if index.ndim != params.ndim:
            raise BundleError(
                "index", f"{path.name} has {index.ndim} dimensions, not {params.ndim}"
            )
        if index.dtype != _SCALAR[params.dtype]:
            raise BundleError("index", f"{path.name} stores {index.dtype}, not {params.dtype}")
        if index.metric_kind != MetricKind.Cos:
            raise BundleError("index", f"{path.name} uses metric {index.metric_kind}, not cos")
        if len(index) != expected_count:
            raise BundleError(
                "index", f"{path.name} holds {len(index)} templates, manifest says {expected_count}"
            )
        loaded = cls(index, params)
        loaded.read_only = view or not lookups
        loaded.lookups = lookups
        return loaded

    def save(self, path: Path) -> None:
        try:
            self._index.save(str(path))
        except (RuntimeError, OSError) as exc:
            raise WatchlistError(f"cannot write index {path}: {exc}") from exc

    # --- contents ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._index)

    @property
    def memory_usage(self) -> int:
        return int(self._index.memory_usage)

    @property
    def serialized_length(self) -> int:
        return int(self._index.serialized_length)

    def keys(self) -> KeyArray:
        """All keys, ascending."""
        keys = np.asarray(self._index.keys[:], dtype=np.uint64).copy()
        keys.sort()
        return keys

    def vectors(self, keys: KeyArray) -> StoredArray:
        """Stored vectors for ``keys`` (all must be present), in that order."""
        if len(keys) == 0:
            return np.zeros((0, self.params.ndim), dtype=numpy_dtype(self.params.dtype))
        if not self.lookups:
            raise WatchlistError("this index was opened without key lookups")
        rows = cast(
            "tuple[np.ndarray[Any, Any] | None, ...]",
            self._index.get(np.asarray(keys, dtype=np.uint64)),
        )
        present = [row for row in rows if row is not None]
        if len(present) != len(rows):
            raise WatchlistError("index lookup of a key that is not stored")
        stacked: StoredArray = np.ascontiguousarray(
            np.vstack(present), dtype=numpy_dtype(self.params.dtype)
        )
        return stacked

    def digest(self) -> str:
        keys = self.keys()
        return templates_digest(keys, self.vectors(keys))

    def remove(self, keys: KeyArray) -> None:
        if self.read_only:
            raise WatchlistError("this index is a read-only view: filter results instead")
        present = [k for k in np.asarray(keys, dtype=np.uint64) if self._index.contains(k)]
        if present:
            self._index.remove(np.asarray(present, dtype=np.uint64))

    def set_expansion_search(self, value: int) -> None:
        self._index.expansion_search = value  # type: ignore[misc]  # untyped setter upstream

    # --- search -----------------------------------------------------------------------------

    def search(
        self, queries: npt.ArrayLike, count: int, *, exact: bool | None = None, threads: int = 1
    ) -> list[Hits]:
        """Top ``count`` templates for each query (float vectors, (d,) or (n, d)).

        ``exact=None`` searches exhaustively when the index holds at most ``exact_max``
        templates and uses the graph otherwise.
        """
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.params.ndim:
            raise WatchlistError(f"query must have {self.params.ndim} dimensions, got {q.shape}")
        size = len(self._index)
        if size == 0 or count <= 0:
            empty = Hits(np.zeros(0, np.uint64), np.zeros(0, np.float32))
            return [empty for _ in range(len(q))]
        if exact is None:
            exact = size <= self.exact_max
        stored = quantize(q, self.params.dtype)
        matches = self._index.search(stored, min(count, size), exact=exact, threads=threads)
        keys = np.asarray(matches.keys, dtype=np.uint64).reshape(len(q), -1)
        distances = np.asarray(matches.distances, dtype=np.float32).reshape(len(q), -1)
        if isinstance(matches, BatchMatches):
            counts = np.asarray(matches.counts).reshape(-1)
        else:  # usearch returns a single Matches for one query
            counts = np.asarray([len(matches.keys)])
        out = []
        for row in range(len(q)):
            n = int(counts[row])
            out.append(Hits(keys[row, :n].copy(), (1.0 - distances[row, :n]).astype(np.float32)))
        return out
