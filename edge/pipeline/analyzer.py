"""Detect -> align -> quality gate -> embed, for one image or frame.

The one entry point the rest of the product uses for recognition; each stage stays callable on
its own so that benchmarks can time them separately. Detection is multi-scale on large frames
(``detector.tiling``): a still gets the whole-frame pass and every tile
(:mod:`edge.pipeline.multiscale`); video gets a :class:`VideoScanner` per frame size.
"""

from __future__ import annotations

from edge.backends import InferenceSession, Placement, open_session
from edge.config import Config
from edge.models import EMBEDDING_MODEL, ModelPin, embedding_pin
from edge.pipeline.align import KeypointAligner, MeshAligner
from edge.pipeline.detect import BlazeFace, FaceDetector
from edge.pipeline.embed import Embedder
from edge.pipeline.multiscale import MultiScaleDetector, VideoScanner
from edge.pipeline.quality import assess
from edge.pipeline.tiles import NO_TILES, plan_tiles
from edge.types import AlignedFace, Detection, Face, FloatArray, Image


def open_model(config: Config, stem: str, precision: str = "fp32") -> InferenceSession:
    """A shipped model on the configured runtime (threads, execution providers)."""
    runtime = config.runtime
    placement = Placement(
        runtime.threads,
        runtime.providers,
        config.paths().root / "tensorrt" if runtime.providers == "auto" else None,
    )
    return open_session(stem, runtime.backend, placement, precision)


class FaceAnalyzer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.detector = FaceDetector(self._detector_session(config.detector.model), config.detector)
        self.aligner: MeshAligner | KeypointAligner = (
            MeshAligner(open_model(config, "face_mesh"))
            if config.align.refiner == "mesh"
            else KeypointAligner()
        )
        self.embedder = Embedder(
            open_model(config, EMBEDDING_MODEL, config.embedder.precision),
            config.embedder.batch_size,
        )
        self._multiscale: MultiScaleDetector | None = None  # opened at the first large frame
        self._check_mesh: MeshAligner | None = None

    def _detector_session(self, model: str) -> InferenceSession:
        return open_model(self.config, f"blazeface_{model}", self.config.detector.precision)

    def _session_for(self, model: str) -> BlazeFace:
        if model == self.detector.model.model:
            return self.detector.model
        return BlazeFace(self._detector_session(model), model)

    @property
    def multiscale(self) -> MultiScaleDetector:
        """The tiled detector (its extra models are loaded on first use)."""
        if self._multiscale is None:
            tiles = self._session_for("full_range")
            crop_model = self.config.detector.crop_model
            crops = tiles if crop_model == "full_range" else self._session_for(crop_model)
            self._multiscale = MultiScaleDetector(
                self.detector, tiles, crops, self.config.detector, self._presence
            )
        return self._multiscale

    def _presence(self, image: Image, detections: list[Detection]) -> list[float]:
        """The face mesh's face-presence probability of each detection (tiles' verifier)."""
        mesh = self.aligner if isinstance(self.aligner, MeshAligner) else self._mesh_for_checks()
        return [presence for _, presence in mesh.five_points(image, detections)]

    def _mesh_for_checks(self) -> MeshAligner:
        # align.refiner 'none' aligns on BlazeFace's points, but tiles still need the check.
        if self._check_mesh is None:
            self._check_mesh = MeshAligner(open_model(self.config, "face_mesh"))
        return self._check_mesh

    def video_scanner(self, frame_w: int, frame_h: int) -> VideoScanner | None:
        """The per-frame scan for video of this size, or None when the whole frame is all it
        needs. A configured tile that cannot fit the frame is a ConfigError here."""
        plan = plan_tiles(self.config.detector, frame_w, frame_h, video=True)
        if not plan.levels:
            return None  # and the tile models are never loaded
        return VideoScanner(self.multiscale, plan, frame_w, frame_h)

    @classmethod
    def from_config(cls, config: Config) -> FaceAnalyzer:
        return cls(config)

    @property
    def model_pin(self) -> ModelPin:
        """The embedding model; every precision shares it (their embeddings interchange)."""
        return embedding_pin()

    @property
    def model_name(self) -> str:
        return self.model_pin.name

    @property
    def model_sha256(self) -> str:
        return self.model_pin.sha256

    def detect(self, image: Image) -> list[Detection]:
        """Every face in a still: the whole-frame pass, and every tile on a large image."""
        height, width = image.shape[:2]
        if self.config.detector.tiling == "off":
            return self.detector.detect(image)
        if self._multiscale is None and self._plan_is_empty(width, height):
            return self.detector.detect(image)
        return self.multiscale.detect(image)

    def _plan_is_empty(self, width: int, height: int) -> bool:
        return plan_tiles(self.config.detector, width, height, video=False) is NO_TILES

    def align(self, image: Image, detections: list[Detection]) -> list[AlignedFace]:
        return self.aligner.align(image, detections)

    def embed(self, aligned: list[AlignedFace]) -> FloatArray:
        return self.embedder.embed([face.image for face in aligned])

    def analyze(self, image: Image) -> list[Face]:
        """Every face in the frame, in detection order. Faces below the quality floor are kept
        (so callers can report them) but carry no embedding and must not be matched."""
        detections = self.detect(image)
        aligned = self.align(image, detections)
        qualities = [assess(face, self.config.quality.min_eye_px).score for face in aligned]
        floor = self.config.quality.min_quality
        passing = [face for face, q in zip(aligned, qualities, strict=True) if q >= floor]
        vectors = iter(self.embed(passing))
        return [
            Face(
                detection=detection,
                quality=quality,
                embedding=next(vectors) if quality >= floor else None,
            )
            for detection, quality in zip(detections, qualities, strict=True)
        ]
