"""Shared helpers for the watchlist tests: keys, synthetic people and lists, a fake analyzer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from edge.models import ModelPin
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import VerifiedBundle, load_full, read_bundle
from edge.watchlist.details import details_path, list_details, write_details
from edge.watchlist.entries import Entry, ListContent
from edge.watchlist.index import Dtype, quantize
from edge.watchlist.install import WatchlistStore
from edge.watchlist.policy import ThresholdPolicy
from edge.watchlist.writer import (
    EntryFields,
    EntrySpec,
    ListMeta,
    TemplateSpec,
    assemble,
    write_delta,
    write_full,
)

MODEL = ModelPin("mobilefacenet", "ab" * 32)
OTHER_MODEL = ModelPin("arcface-r100", "cd" * 32)
DIM = 192
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def noisy(rng: np.random.Generator, v: np.ndarray, cos: float) -> np.ndarray:
    """Unit vectors at cosine ``cos`` to the rows of ``v`` (unit rows)."""
    n = unit(rng, len(v), v.shape[1])
    n = n - (n * v).sum(1, keepdims=True) * v
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return (cos * v + np.sqrt(1 - cos**2) * n).astype(np.float32)


@dataclass
class Person:
    label: str
    vectors: np.ndarray  # (t, d) float32 unit
    photos: list[str]
    fields: EntryFields = field(default_factory=EntryFields)

    def spec(self, dtype: Dtype = "i8") -> EntrySpec:
        stored = quantize(self.vectors, dtype)
        return EntrySpec(
            self.label,
            self.fields,
            tuple(TemplateSpec(p, 0.9, stored[i]) for i, p in enumerate(self.photos)),
        )


def people(seed: int, n: int, templates: int = 2, prefix: str = "person") -> list[Person]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        centre = unit(rng, 1)
        vectors = noisy(rng, np.repeat(centre, templates, axis=0), 0.8)
        photos = [f"{seed:08x}{i:08x}{t:08x}{0:08x}" for t in range(templates)]
        out.append(Person(f"{prefix}-{i:04d}", vectors, photos))
    return out


def make_keys(tmp: Path) -> tuple[Any, Any, Path, Path]:
    priv_path, pub_path = keyring.generate_keypair(tmp / "keys")
    return (
        keyring.load_private_key(priv_path),
        keyring.load_public_key(pub_path),
        priv_path,
        pub_path,
    )


def meta(
    version: int,
    *,
    list_id: str = "test-list",
    model: ModelPin = MODEL,
    dtype: Dtype = "i8",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    policy: ThresholdPolicy | None = None,
) -> ListMeta:
    return ListMeta(
        list_id=list_id,
        version=version,
        created=NOW,
        valid_from=valid_from or NOW - timedelta(days=1),
        valid_until=valid_until or NOW + timedelta(days=30),
        model=model,
        dim=DIM,
        dtype=dtype,
        policy=policy or ThresholdPolicy.fixed(0.5),
    )


def build_full(
    out: Path, persons: list[Person], private_key: Any, version: int = 1, **kw: Any
) -> VerifiedBundle:
    m = meta(version, **kw)
    content, next_id = assemble([p.spec(m.dtype) for p in persons], m.dtype, DIM, NOW)
    return write_full(out, content, m, next_id, private_key)


def build_with_details(
    out: Path, persons: list[Person], private_key: Any, version: int = 1, **kw: Any
) -> tuple[VerifiedBundle, Path]:
    """A full bundle and, beside it (``<out>.dispatch.json``), its signed dispatch details."""
    m = meta(version, **kw)
    content, next_id = assemble([p.spec(m.dtype) for p in persons], m.dtype, DIM, NOW)
    bundle = write_full(out, content, m, next_id, private_key)
    path = details_path(out)
    fields = {p.label: p.fields for p in persons}
    write_details(path, list_details(content, fields, [bundle], private_key), private_key)
    return bundle, path


def build_old_style(
    out: Path, persons: list[Person], private_key: Any, version: int = 1, **kw: Any
) -> VerifiedBundle:
    """A full bundle as built before the details moved out: texts in its entries table."""
    m = meta(version, **kw)
    content, next_id = assemble([p.spec(m.dtype) for p in persons], m.dtype, DIM, NOW)
    fields = {p.label: p.fields for p in persons}
    entries = [
        Entry(
            e.id,
            e.label,
            e.added,
            e.templates,
            e.expires,
            fields[e.label].reason,
            fields[e.label].legal_basis,
            fields[e.label].case_ref,
        )
        for e in content.entries
    ]
    old = ListContent.create(entries, content.keys, content.vectors)
    return write_full(out, old, m, next_id, private_key)


def build_next(
    base_path: Path,
    persons: list[Person],
    private_key: Any,
    public_key: Any,
    version: int,
    delta_out: Path,
    full_out: Path,
    **kw: Any,
) -> tuple[VerifiedBundle, VerifiedBundle, ListContent]:
    """A delta and the equivalent full bundle for ``persons`` on top of ``base_path``."""
    base = read_bundle(base_path, public_key)
    _, base_content = load_full(base)
    m = meta(version, **kw)
    content, next_id = assemble(
        [p.spec(m.dtype) for p in persons],
        m.dtype,
        DIM,
        NOW,
        base=base_content,
        base_next_entry_id=base.manifest.next_entry_id,
    )
    delta = write_delta(delta_out, base, base_content, content, m, next_id, private_key)
    full = write_full(full_out, content, m, next_id, private_key)
    return delta, full, content


class FixedClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def store(
    root: Path, public_key: Any, clock: FixedClock | None = None, **kw: Any
) -> WatchlistStore:
    return WatchlistStore(root, public_key, MODEL, clock=clock or FixedClock(), **kw)


# --- a fake analyzer for enrollment tests ---------------------------------------------------------
# A test photo is a small PNG whose first pixel says what the fake "sees": blue = kind
# (0 one good face, 1 no face, 2 two faces, 3 a face below the quality floor), green = person,
# red = photo number. Embeddings are noisy copies of a per-person centre.

GOOD, NO_FACE, TWO_FACES, LOW_QUALITY = 0, 1, 2, 3


def write_photo(path: Path, kind: int, person: int, photo: int) -> Path:
    import cv2

    image = np.full((16, 16, 3), 128, dtype=np.uint8)
    image[0, 0] = (kind, person, photo)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def person_centre(person: int) -> np.ndarray:
    return unit(np.random.default_rng([77, person]), 1)[0]


def person_probe(person: int, seed: int = 0, cos: float = 0.8) -> np.ndarray:
    rng = np.random.default_rng([78, seed])
    return noisy(rng, person_centre(person)[None, :], cos)[0]


class FakeAnalyzer:
    model_name = MODEL.name
    model_sha256 = MODEL.sha256

    def __init__(self) -> None:
        self.calls = 0

    def analyze(self, image: np.ndarray) -> list[Any]:
        from edge.types import Detection, Face

        self.calls += 1
        kind, person, photo = (int(x) for x in image[0, 0])
        det = Detection((0.0, 0.0, 10.0, 10.0), 0.9, np.zeros((6, 2), dtype=np.float32))
        if kind == NO_FACE:
            return []
        vec = noisy(
            np.random.default_rng([79, person, photo]), person_centre(person)[None, :], 0.85
        )[0]
        if kind == TWO_FACES:
            return [Face(det, 0.9, vec), Face(det, 0.8, vec)]
        if kind == LOW_QUALITY:
            return [Face(det, 0.1, None)]
        return [Face(det, 0.9, vec)]
