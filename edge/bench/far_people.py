"""Who is in ``edge bench far``: the folder's identities in disjoint roles, the watchlist
enrolled from some of them through the production path, and the faces shown (probes).

The watchlist is built through the production enrollment path: ``gallery_size`` identities with
at least two photos, each enrolled from up to five of its OTHER full-size photos (templates
stored as the list stores them), signed, loaded as a device loads it; its threshold comes from
the default policy (``watchlist.target_fpir`` at the list's template count, with the model's
impostor calibration). Half the faces of a frame are held-out photos of enrolled people (mated),
half are people not on the list (non-mated).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.bench.groundtruth import Photos
from edge.bench.identify import list_images
from edge.bench.scenes import SourceFace
from edge.clock import utc_now
from edge.config import Config
from edge.errors import EdgeError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.embed import EMBEDDING_DIM
from edge.pipeline.images import decode_image
from edge.watchlist.enroll import enroll
from edge.watchlist.matcher import Watchlist
from edge.watchlist.policy import ThresholdPolicy
from edge.watchlist.writer import EntrySpec, ListMeta, assemble, write_full

BACKGROUND_BUCKET = 15  # % of the single-photo identities kept for background walls
MAX_TEMPLATES = 5  # enrolled photos per person at most

# ``progress(items, what)`` wraps each long loop of the benchmark (e.g. in a progress bar).
Progress = Callable[[Sequence[Any], str], Iterable[Any]]


def _bucket(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % 100


@dataclass
class Roles:
    """Disjoint roles of the folder's identities (backgrounds by a hash of the name)."""

    multi: list[str]  # >= 2 photos: gallery candidates
    single: list[str]  # 1 photo: non-mated faces
    background: list[str]  # 1 photo, reserved for background walls
    photos: dict[str, list[Path]]


def roles(data_dir: Path) -> Roles:
    photos: dict[str, list[Path]] = {}
    for name, _number, path in list_images(data_dir):
        photos.setdefault(name, []).append(path)
    multi = sorted(n for n, p in photos.items() if len(p) >= 2)
    rest = sorted(n for n, p in photos.items() if len(p) < 2)
    background = [n for n in rest if _bucket(n) < BACKGROUND_BUCKET]
    single = [n for n in rest if _bucket(n) >= BACKGROUND_BUCKET]
    if not multi:
        raise EdgeError(f"{data_dir}: no identity has two photos (one to enroll, one to find)")
    if not background:
        background = single[: max(1, len(single) // 7)]
        single = single[len(background) :]
    return Roles(multi, single, background, photos)


@dataclass
class Gallery:
    watchlist: Watchlist
    enrolled: list[str]
    held_out: dict[str, list[Path]]  # per enrolled identity: its photos kept for probes
    tried: list[str]  # every identity offered to enrollment (not non-mated probes)
    photos: int
    rejected: int

    def to_json(self) -> dict[str, Any]:
        m = self.watchlist.manifest
        return {
            "identities": len(self.enrolled),
            "templates": m.template_count,
            "photos_offered": self.photos,
            "photos_rejected": self.rejected,
            "threshold": round(self.watchlist.threshold, 4),
            "policy": m.policy.to_json(),
            "dtype": m.dtype,
        }


def build_gallery(
    analyzer: FaceAnalyzer,
    config: Config,
    people: Roles,
    size: int,
    rng: np.random.Generator,
    work: Path,
    progress: Progress,
) -> Gallery:
    """Enroll identities (in a seeded order) until ``size`` are on the list: for each, one
    photo (two when it has four or more) is held out for probes, up to ``MAX_TEMPLATES`` others
    are enrolled as ``edge watchlist build`` enrolls them; then sign and load the list."""
    if size > len(people.multi):
        raise EdgeError(
            f"gallery size {size}: only {len(people.multi)} identities have at least two photos"
        )
    order = [people.multi[int(i)] for i in rng.permutation(len(people.multi))]
    dtype = config.watchlist.index_dtype
    specs: list[EntrySpec] = []
    held: dict[str, list[Path]] = {}
    tried: list[str] = []
    offered = rejected = 0
    for name in progress(order, "enrolling"):
        if len(specs) == size:
            break
        photos = [people.photos[name][int(i)] for i in rng.permutation(len(people.photos[name]))]
        keep = 2 if len(photos) >= 4 else 1
        tried.append(name)
        entry, report = enroll(
            {name: photos[keep : keep + MAX_TEMPLATES]}, analyzer, dtype, decode_image
        )
        offered += len(report.photos)
        rejected += len(report.rejected)
        if entry:
            specs += entry
            held[name] = photos[:keep]
    if len(specs) < size:
        raise EdgeError(f"gallery size {size}: only {len(specs)} identities could be enrolled")
    now = utc_now()
    meta = ListMeta(
        list_id="bench-far",
        version=1,
        created=now,
        valid_from=now - timedelta(hours=1),
        valid_until=now + timedelta(days=1),
        model=analyzer.model_pin,
        dim=EMBEDDING_DIM,
        dtype=dtype,
        policy=ThresholdPolicy.fpir(config.watchlist.target_fpir),
        connectivity=config.watchlist.connectivity,
        expansion_add=config.watchlist.expansion_add,
    )
    content, next_id = assemble(specs, dtype, EMBEDDING_DIM, now)
    key = Ed25519PrivateKey.generate()
    write_full(work / "list", content, meta, next_id, key)
    watchlist = Watchlist.from_bundle(
        work / "list", key.public_key(), config.watchlist, analyzer.model_pin
    )
    return Gallery(watchlist, sorted(held), held, tried, offered, rejected)


@dataclass(frozen=True)
class Probe:
    face: SourceFace
    mated: bool


def choose_probes(
    people: Roles, gallery: Gallery, photos: Photos, count: int, rng: np.random.Generator
) -> list[Probe]:
    """``count`` faces, half mated (held-out photos of enrolled people, cycled when there are
    fewer), half non-mated (distinct photos of people not on the list), in a seeded order."""
    mated_pool = [
        face
        for name in gallery.enrolled
        for path in gallery.held_out[name]
        if (face := photos.face(name, path)) is not None
    ]
    if not mated_pool:
        raise EdgeError("no held-out photo of an enrolled person shows a detectable face")
    n_mated = count // 2
    order = rng.permutation(max(n_mated, len(mated_pool)))
    mated = [mated_pool[int(i) % len(mated_pool)] for i in order[:n_mated]]
    excluded = set(gallery.tried) | set(people.background)
    candidates = [
        (name, path)
        for name in people.single + people.multi
        if name not in excluded
        for path in people.photos[name]
    ]
    nonmated: list[SourceFace] = []
    for i in rng.permutation(len(candidates)):
        if len(nonmated) == count - n_mated:
            break
        name, path = candidates[int(i)]
        if (face := photos.face(name, path)) is not None:
            nonmated.append(face)
    if len(nonmated) < count - n_mated:
        raise EdgeError(f"only {len(nonmated)} photos of people not on the list show a face")
    probes = [Probe(f, True) for f in mated] + [Probe(f, False) for f in nonmated]
    return [probes[int(i)] for i in rng.permutation(len(probes))]
