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

import logging
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.bench import scenes, walk
from edge.bench.backgrounds import Background, BackgroundMaker, read_clip
from edge.bench.far_measure import Records, full_size, measure_scene, summarise
from edge.bench.far_people import (
    MAX_TEMPLATES,
    Gallery,
    Progress,
    build_gallery,
    choose_probes,
    roles,
)
from edge.bench.groundtruth import Photos, Scanner
from edge.config import Config
from edge.demo import DEMO_CLIP
from edge.errors import EdgeError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.images import read_image
from edge.pipeline.tiles import plan_tiles
from edge.types import Image

log = logging.getLogger(__name__)

DEFAULT_WIDTHS = (24, 32, 48, 64, 96, 128)
BACKGROUND_DRAWS = 8  # tries for a background with few enough real faces (see _background)
BACKGROUND_MAX_FACES = 20  # real faces in a background before it is drawn again
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


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
    maker: BackgroundMaker, scanner: Scanner, seed: int, i: int, limit: int
) -> Background:
    """Frame ``i``'s background and its real faces, drawn again (up to ``BACKGROUND_DRAWS``
    times, then the one with the fewest) while it holds more than ``limit`` real faces: the
    detector returns at most ``detector.max_faces`` faces, best first, and a wall of 70 faces
    would push the pasted ones out (``frames_at_face_limit`` counts any frame where it did).
    The limit is fixed (``BACKGROUND_MAX_FACES``), so the scenes are the same whatever the
    detector's settings: only then do two runs with different settings compare."""
    best: Background | None = None
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
    scanner = Scanner(config)
    photos = Photos(analyzer, scanner)
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
    maker = BackgroundMaker(settings.frame, read_clip(DEMO_CLIP), wall_photos, extras)
    clock.done("clip")
    records = Records()
    # The scenes must not depend on the detector's settings: a fixed limit on real faces.
    face_limit = BACKGROUND_MAX_FACES
    jobs = [(i, w) for i in range(settings.frames) for w in settings.widths]
    background: Background | None = None
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
    return _result(settings, config, records, reference, gallery, clock)


def _result(
    settings: Settings,
    config: Config,
    records: Records,
    reference: dict[str, Any],
    gallery: Gallery,
    clock: _Phases,
) -> dict[str, Any]:
    """What ``run`` returns (and ``--json`` prints): the figures and the settings behind them."""
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
    scanner = Scanner(analyzer.config)
    photos = Photos(analyzer, scanner)
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
    maker = BackgroundMaker(frame, read_clip(DEMO_CLIP))
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
