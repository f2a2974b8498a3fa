"""Small and distant faces: detection, identification and cost by face width in large frames.

Faces from an LFW-style folder (``images/<Name>/<Name>_NNNN.jpg``) are shrunk so that the
production detector's box on the full-size photo becomes ``W`` px wide, and pasted (the whole
photo, soft edges) into real backgrounds of the chosen frame size (:mod:`edge.bench.scenes`):
frames of the shipped demo clip scaled up, mosaics with walls of LFW photos of identities
reserved for backgrounds, and any images of ``--backgrounds``. Each frame holds faces of one
width; frame ``i`` of every width shows the same people on the same background, so the widths
differ in size alone.

Every frame goes through the production pipeline as a device runs a still:
``FaceAnalyzer.detect`` (whole frame, plus the tiles the detector config asks for), then for the
pasted faces it found: ``align``, the quality gate and ``embed``, then a search of a watchlist.

The watchlist is built through the production enrollment path: ``gallery_size`` identities with
at least two photos, each enrolled from up to five of its OTHER full-size photos (templates
stored as the list stores them), signed, loaded as a device loads it; its threshold comes from
the default policy (``watchlist.target_fpir`` at the list's template count, with the model's
impostor calibration). Half the faces of a frame are held-out photos of enrolled people (mated),
half are people not on the list (non-mated).

Per width:

- ``detect``: share of pasted faces with a detection at IoU >= 0.5 (one detection per face).
- ``false_per_frame``: detections on no face at all, per frame. Detections on real faces of the
  background (found beforehand by a scan more sensitive than the detector under test) or on the
  other people of a pasted photo count neither as hits nor as false; ``duplicates_per_frame``
  counts second or misplaced boxes on a pasted face.
- ``identify``: share of mated faces that were detected, passed the quality gate and whose top
  candidate is the right person (rank-1; a miss at any stage is a miss).
- ``identify_above_threshold``: the same, with the score at or above the list's threshold (what
  raises an alert). Capped by the embedder even at full size: see ``full_size``.
- ``false_match_rate``: share of non-mated faces whose top candidate reaches the threshold.
- ``ms_per_frame``: median of detect + align + quality + embed of the frame's pasted faces
  (matching excluded, the first frame a warm-up). Background faces are not embedded.
- ``identify_ungated``: rank-1 had the quality gate let every detected face through
  (diagnostic: what the gate costs at that size).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.bench import scenes, walk
from edge.bench.identify import list_images
from edge.clock import utc_now
from edge.config import Config
from edge.demo import DEMO_CLIP
from edge.errors import EdgeError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.capture import decode_image, read_image
from edge.pipeline.embed import EMBEDDING_DIM
from edge.pipeline.pick import nearest_to_centre
from edge.pipeline.quality import assess
from edge.pipeline.tiles import plan_tiles
from edge.types import AlignedFace, Box, Image
from edge.watchlist.enroll import enroll
from edge.watchlist.matcher import Watchlist
from edge.watchlist.policy import ThresholdPolicy
from edge.watchlist.writer import EntrySpec, ListMeta, assemble, write_full

log = logging.getLogger(__name__)

DEFAULT_WIDTHS = (24, 32, 48, 64, 96, 128)
BACKGROUND_BUCKET = 15  # % of the single-photo identities kept for background walls
MAX_TEMPLATES = 5  # enrolled photos per person at most
BACKGROUND_DRAWS = 8  # tries for a background with few enough real faces (see _background)
BACKGROUND_MAX_FACES = 20  # real faces in a background before it is drawn again
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

Progress = Callable[[Sequence[Any], str], Iterable[Any]]


def _no_progress(items: Sequence[Any], _what: str) -> Iterable[Any]:
    return items


@dataclass(frozen=True)
class Settings:
    frame: tuple[int, int] = (1920, 1080)
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    frames: int = 40  # per width
    faces: int = 6  # per frame
    gallery_size: int = 100
    seed: int = 0
    backgrounds: Path | None = None

    def check(self) -> None:
        w, h = self.frame
        if w < 64 or h < 64:
            raise EdgeError(f"frame {w}x{h} is too small (at least 64x64)")
        if not self.widths or min(self.widths) < 8:
            raise EdgeError("face widths must be at least 8 px")
        largest = max(self.widths)
        if 2.5 * largest > min(w, h):
            raise EdgeError(
                f"face width {largest} px does not fit a {w}x{h} frame (the whole photo around "
                f"the face is pasted: keep widths under {int(min(w, h) / 2.5)} px)"
            )
        if self.frames < 1 or self.faces < 1 or self.gallery_size < 1:
            raise EdgeError("frames, faces per frame and gallery size must be at least 1")


# --- identities, gallery and probes ---------------------------------------------------------


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
    face: scenes.SourceFace
    mated: bool


def choose_probes(
    people: Roles, gallery: Gallery, photos: scenes.Photos, count: int, rng: np.random.Generator
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
    nonmated: list[scenes.SourceFace] = []
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


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class FaceRecord:
    width: int
    mated: bool
    detected: bool = False
    passed: bool = False  # through the quality gate (and the size limit, if configured)
    eye_px: float | None = None
    rank1: bool = False  # the top candidate is the right person (gated faces: False)
    above: bool = False  # ... and at or above the threshold
    alarm: bool = False  # the top candidate reaches the threshold (any person)
    rank1_ungated: bool = False


@dataclass
class FrameRecord:
    width: int
    ms: float
    detect_ms: float
    false: int
    duplicates: int
    ignored: int
    unplaced: int
    at_limit: bool  # the detector returned detector.max_faces faces: some may be cut off


@dataclass
class Records:
    faces: list[FaceRecord] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)


def _passes(face: AlignedFace, floor: float, min_eye_px: float) -> tuple[bool, float]:
    """Through the quality gate (which refuses any face under the eye-distance limit)?"""
    quality = assess(face, min_eye_px).score
    return quality >= floor, quality


def _search(watchlist: Watchlist, vector: Any, name: str) -> tuple[bool, bool, bool]:
    """(top is the right person, ... at or above the threshold, top reaches the threshold)."""
    ident = watchlist.identify(vector)
    if not ident.candidates:
        return False, False, False
    top = ident.candidates[0]
    alarm = top.score >= ident.threshold
    return top.label == name, top.label == name and alarm, alarm


def measure_scene(
    analyzer: FaceAnalyzer,
    scene: scenes.Scene,
    probes: Sequence[Probe],
    watchlist: Watchlist,
    width: int,
    records: Records,
) -> tuple[scenes.Scoring, list[Box]]:
    """Run one frame through the pipeline, time it and record what happened to each face."""
    config = analyzer.config
    floor = config.quality.min_quality
    min_eye = config.quality.min_eye_px
    t0 = time.perf_counter()
    detections = analyzer.detect(scene.image)
    t1 = time.perf_counter()
    boxes = [d.box for d in detections]
    scoring = scenes.score(scene, boxes)
    placed = sorted(scoring.hits)
    t2 = time.perf_counter()
    aligned = analyzer.align(scene.image, [detections[scoring.hits[k]] for k in placed])
    gate = [_passes(face, floor, min_eye) for face in aligned]
    vectors = analyzer.embed([face for face, (ok, _) in zip(aligned, gate, strict=True) if ok])
    t3 = time.perf_counter()
    gated = [face for face, (ok, _) in zip(aligned, gate, strict=True) if not ok]
    extra = analyzer.embed(gated) if gated else vectors[:0]  # untimed: the diagnostic only
    passed_vectors, gated_vectors = iter(vectors), iter(extra)
    by_index = dict(zip(placed, zip(aligned, gate, strict=True), strict=True))
    for k, face in enumerate(scene.faces):
        probe = probes[face.tag]
        rec = FaceRecord(width, probe.mated)
        if k in by_index:
            face_aligned, (ok, _quality) = by_index[k]
            rec.detected, rec.passed = True, ok
            rec.eye_px = face_aligned.eye_distance_px
            vector = next(passed_vectors) if ok else next(gated_vectors)
            rank1, above, alarm = _search(watchlist, vector, face.name)
            rec.rank1_ungated = rank1
            if ok:
                rec.rank1, rec.above, rec.alarm = rank1, above, alarm
        records.faces.append(rec)
    ms = (t1 - t0 + t3 - t2) * 1000
    records.frames.append(
        FrameRecord(
            width,
            ms,
            (t1 - t0) * 1000,
            len(scoring.false),
            len(scoring.duplicates),
            len(scoring.ignored),
            len(scene.unplaced),
            len(detections) >= config.detector.max_faces,
        )
    )
    return scoring, boxes


def full_size(
    analyzer: FaceAnalyzer, photos: scenes.Photos, probes: Sequence[Probe], watchlist: Watchlist
) -> dict[str, Any]:
    """The same people at full size (the photo itself, as in ``edge bench identify``): the
    ceiling the embedder and the threshold leave for any face width."""
    seen: dict[Path, Probe] = {p.face.path: p for p in probes}
    mated = nonmated = rank1 = above = alarms = 0
    for path, probe in seen.items():
        image = photos.image(path)
        faces = analyzer.analyze(image)
        face = nearest_to_centre(faces, image) if faces else None
        result = (False, False, False)
        if face is not None and face.embedding is not None:
            result = _search(watchlist, face.embedding, probe.face.name)
        if probe.mated:
            mated += 1
            rank1 += result[0]
            above += result[1]
        else:
            nonmated += 1
            alarms += result[2]
    return {
        "mated": mated,
        "nonmated": nonmated,
        "identify": rank1 / mated if mated else None,
        "identify_above_threshold": above / mated if mated else None,
        "false_match_rate": alarms / nonmated if nonmated else None,
    }


def _share(values: Iterable[bool]) -> float | None:
    flags = list(values)
    return round(sum(flags) / len(flags), 4) if flags else None


def summarise(records: Records, widths: Sequence[int]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for width in widths:
        faces = [f for f in records.faces if f.width == width]
        frames = [f for f in records.frames if f.width == width]
        mated = [f for f in faces if f.mated]
        nonmated = [f for f in faces if not f.mated]
        timed = [f.ms for f in frames]
        eyes = [f.eye_px for f in faces if f.eye_px is not None]
        n = max(1, len(frames))
        out[str(width)] = {
            "detect": _share(f.detected for f in faces),
            "false_per_frame": round(sum(f.false for f in frames) / n, 4),
            "identify": _share(f.rank1 for f in mated),
            "ms_per_frame": round(float(np.median(timed)), 1) if timed else None,
            "identify_above_threshold": _share(f.above for f in mated),
            "false_match_rate": _share(f.alarm for f in nonmated),
            "wrong_match_rate": _share(f.alarm and not f.rank1 for f in mated),
            "duplicates_per_frame": round(sum(f.duplicates for f in frames) / n, 4),
            "passed_gate": _share(f.passed for f in faces),
            "identify_ungated": _share(f.rank1_ungated for f in mated),
            "ms_per_frame_p90": round(float(np.percentile(timed, 90)), 1) if timed else None,
            "detect_ms": round(float(np.median([f.detect_ms for f in frames])), 1)
            if frames
            else None,
            "eye_px_median": round(float(np.median(eyes)), 1) if eyes else None,
            "frames": len(frames),
            "faces": len(faces),
            "mated": len(mated),
            "nonmated": len(nonmated),
            "unplaced": sum(f.unplaced for f in frames),
            "real_faces_ignored_per_frame": round(sum(f.ignored for f in frames) / n, 4),
            "frames_at_face_limit": sum(f.at_limit for f in frames),
        }
    return out


def _read_backgrounds(folder: Path | None) -> list[Image]:
    if folder is None:
        return []
    if not folder.is_dir():
        raise EdgeError(f"--backgrounds {folder}: no such folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise EdgeError(f"--backgrounds {folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [read_image(p) for p in paths]


def _background(
    maker: scenes.BackgroundMaker, scanner: scenes.Scanner, seed: int, i: int, limit: int
) -> scenes.Background:
    """Frame ``i``'s background and its real faces, drawn again (up to ``BACKGROUND_DRAWS``
    times, then the one with the fewest) while it holds more than ``limit`` real faces: the
    detector returns at most ``detector.max_faces`` faces, best first, and a wall of 70 faces
    would push the pasted ones out (``frames_at_face_limit`` counts any frame where it did).
    The limit is fixed (``BACKGROUND_MAX_FACES``), so the scenes are the same whatever the
    detector's settings: only then do two runs with different settings compare."""
    best: scenes.Background | None = None
    for attempt in range(BACKGROUND_DRAWS):
        background = maker.make(np.random.default_rng([seed, 1, i, attempt]))
        background.faces = scanner.background(background.image)
        if len(background.faces) <= limit:
            return background
        if best is None or len(background.faces) < len(best.faces):
            best = background
    assert best is not None
    return best


class _Phases:
    """Wall-clock seconds spent in each phase of the run (a phase may come back)."""

    def __init__(self) -> None:
        self._last = self._start = time.monotonic()
        self.seconds: dict[str, float] = {}

    def done(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now

    def report(self) -> dict[str, float]:
        out = {name: round(value, 1) for name, value in self.seconds.items()}
        out["total"] = round(time.monotonic() - self._start, 1)
        return out


def run(
    analyzer: FaceAnalyzer,
    data_dir: Path,
    settings: Settings,
    progress: Progress = _no_progress,
    save_frames: Path | None = None,
) -> dict[str, Any]:
    """The benchmark; ``progress(items, what)`` wraps each long loop (e.g. in a progress bar),
    ``save_frames`` a folder for annotated frames (see ``edge bench far --help``)."""
    settings.check()
    clock = _Phases()
    config = analyzer.config
    extras = _read_backgrounds(settings.backgrounds)
    people = roles(data_dir)
    if save_frames is not None:
        try:
            save_frames.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EdgeError(f"--save-frames {save_frames}: {exc.strerror or exc}") from exc
    scanner = scenes.Scanner(config)
    photos = scenes.Photos(analyzer, scanner)
    rng = np.random.default_rng([settings.seed, 0])
    with tempfile.TemporaryDirectory(prefix="edge-bench-far-") as work:
        gallery = build_gallery(
            analyzer, config, people, settings.gallery_size, rng, Path(work), progress
        )
    clock.done("gallery")
    log.info(
        "watchlist of %d identities, %d templates, threshold %.4f",
        len(gallery.enrolled),
        gallery.watchlist.manifest.template_count,
        gallery.watchlist.threshold,
    )
    count = settings.frames * settings.faces
    probes = choose_probes(people, gallery, photos, count, rng)
    clock.done("probes")
    wall_photos = [p for name in people.background for p in people.photos[name]]
    maker = scenes.BackgroundMaker(settings.frame, scenes.read_clip(DEMO_CLIP), wall_photos, extras)
    clock.done("clip")
    records = Records()
    # The scenes must not depend on the detector's settings: a fixed limit on real faces.
    face_limit = BACKGROUND_MAX_FACES
    jobs = [(i, w) for i in range(settings.frames) for w in settings.widths]
    background: scenes.Background | None = None
    warm = False
    for i, width in progress(jobs, "frames"):
        if background is None or width == settings.widths[0]:
            clock.done("frames")
            background = _background(maker, scanner, settings.seed, i, face_limit)
            clock.done("backgrounds")
        tags = range(i * settings.faces, (i + 1) * settings.faces)
        items = [
            scenes.Paste(probes[t].face, photos.image(probes[t].face.path), float(width), t)
            for t in tags
        ]
        scene = scenes.compose(
            background, items, np.random.default_rng([settings.seed, 2, width, i])
        )
        if not warm:
            analyzer.analyze(scene.image)
            warm = True
        scoring, boxes = measure_scene(analyzer, scene, probes, gallery.watchlist, width, records)
        if save_frames is not None and (i == 0 or scoring.false or scoring.duplicates):
            name = save_frames / f"w{width:03d}_f{i:03d}.jpg"
            cv2.imwrite(str(name), scenes.draw(scene, boxes, scoring))
    clock.done("frames")
    reference = full_size(analyzer, photos, probes, gallery.watchlist)
    clock.done("full_size")
    plan = plan_tiles(config.detector, *settings.frame, video=False)
    return {
        "widths": summarise(records, settings.widths),
        "full_size": reference,
        "gallery": gallery.to_json(),
        "frame": f"{settings.frame[0]}x{settings.frame[1]}",
        "frames_per_width": settings.frames,
        "faces_per_frame": settings.faces,
        "seed": settings.seed,
        "backgrounds": str(settings.backgrounds) if settings.backgrounds else None,
        "tiling": plan.describe(),
        "tiles": len(plan.grid(*settings.frame)),
        "detector": config.detector.model_dump(mode="json"),
        "quality": config.quality.model_dump(mode="json"),
        "backend": config.runtime.backend,
        "threads": config.runtime.threads,
        "precision": config.embedder.precision,
        "seconds": clock.report(),
    }


def format_report(result: dict[str, Any]) -> Iterator[str]:
    g = result["gallery"]
    yield (
        f"far faces in {result['frame']} frames: {result['frames_per_width']} frames x "
        f"{result['faces_per_frame']} faces per width, seed {result['seed']}; "
        f"{result['backend']}/{result['precision']}; {result['tiling']}"
    )
    yield (
        f"watchlist: {g['identities']} identities, {g['templates']} templates, threshold "
        f"{g['threshold']:.4f} ({g['policy']})"
    )
    yield (
        f"{'width':>6} {'detect':>7} {'false/fr':>9} {'dup/fr':>7} {'gate':>6} {'identify':>9} "
        f"{'>=thr':>6} {'ungated':>8} {'FMR':>7} {'eye px':>7} {'ms/fr':>7}"
    )

    def cell(value: Any, fmt: str, width: int) -> str:
        return f"{value:{fmt}}".rjust(width) if value is not None else "-".rjust(width)

    for width, r in sorted(result["widths"].items(), key=lambda item: int(item[0])):
        yield (
            f"{width:>6} {cell(r['detect'], '.3f', 7)} {cell(r['false_per_frame'], '.3f', 9)} "
            f"{cell(r['duplicates_per_frame'], '.3f', 7)} {cell(r['passed_gate'], '.3f', 6)} "
            f"{cell(r['identify'], '.3f', 9)} {cell(r['identify_above_threshold'], '.3f', 6)} "
            f"{cell(r['identify_ungated'], '.3f', 8)} {cell(r['false_match_rate'], '.4f', 7)} "
            f"{cell(r['eye_px_median'], '.1f', 7)} {cell(r['ms_per_frame'], '.1f', 7)}"
        )
    f = result["full_size"]
    yield (
        f"{'full':>6} {'':>7} {'':>9} {'':>7} {'':>6} {cell(f['identify'], '.3f', 9)} "
        f"{cell(f['identify_above_threshold'], '.3f', 6)} {'':>8} "
        f"{cell(f['false_match_rate'], '.4f', 7)}   (the same photos at full size)"
    )


def make_clip(
    analyzer: FaceAnalyzer,
    data_dir: Path,
    out: Path,
    *,
    frame: tuple[int, int] = (1920, 1080),
    seconds: float = 8.0,
    people: int = 8,
    seed: int = 0,
    progress: Progress = _no_progress,
    enroll_photos: Path | None = None,
) -> dict[str, Any]:
    """Write a clip of ``people`` walking towards a fixed camera (:mod:`edge.bench.walk`): a
    real scene from the demo clip and LFW faces. Every other walker, from the first, is a person
    with several photos (``listed``); their other photos (never the one in the clip) go to
    ``enroll_photos`` for ``edge watchlist build``, a list that should alert on them. The rest
    have a single photo: strangers to any list made from the folder."""
    if out.exists():
        raise EdgeError(f"{out} already exists: choose a new path")
    if enroll_photos is not None and enroll_photos.exists():
        raise EdgeError(f"--enroll-photos {enroll_photos} already exists: choose a new folder")
    group = roles(data_dir)
    scanner = scenes.Scanner(analyzer.config)
    photos = scenes.Photos(analyzer, scanner)
    rng = np.random.default_rng([seed, 8])
    listed: dict[str, list[Path]] = {}  # name -> the photos to enroll (not the clip's)
    seen: list[tuple[scenes.SourceFace, Image]] = []
    for name in rng.permutation(group.multi).tolist():
        if len(listed) == (people + 1) // 2:
            break
        first, *others = group.photos[name]
        if (face := photos.face(name, first)) is not None:
            seen.append((face, photos.image(first)))
            listed[name] = others[:MAX_TEMPLATES]
    strangers: list[tuple[scenes.SourceFace, Image]] = []
    for name in rng.permutation(group.single).tolist():
        if len(strangers) == people - len(listed):
            break
        (only,) = group.photos[name]
        if (face := photos.face(name, only)) is not None:
            strangers.append((face, photos.image(only)))
    walkers: list[tuple[scenes.SourceFace, Image]] = []
    for n in range(max(len(seen), len(strangers))):  # a listed person first, then a stranger
        walkers += seen[n : n + 1] + strangers[n : n + 1]
    maker = scenes.BackgroundMaker(frame, scenes.read_clip(DEMO_CLIP))
    background = maker.make(rng)
    while not background.kind.startswith("clip"):
        background = maker.make(rng)  # one real scene, as a fixed camera sees it
    made = walk.write_clip(
        out, background.image, walkers, seconds=seconds, fps=25.0, seed=seed, progress=progress
    )
    if enroll_photos is not None:
        walk.write_enrollment(enroll_photos, listed)
    return {
        **made,
        "listed": [walk.label(name) for name in listed],
        "enroll_photos": None if enroll_photos is None else str(enroll_photos),
    }
