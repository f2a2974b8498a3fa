"""Detect -> align -> quality gate -> embed, for one image or frame.

The one entry point the rest of the product uses for recognition; each stage stays callable on
its own so that benchmarks can time them separately.
"""

from __future__ import annotations

from edge.backends import open_session
from edge.config import Config
from edge.models import EMBEDDING_MODEL, ModelPin, embedding_pin
from edge.pipeline.align import KeypointAligner, MeshAligner
from edge.pipeline.detect import FaceDetector
from edge.pipeline.embed import Embedder
from edge.pipeline.quality import assess
from edge.types import AlignedFace, Detection, Face, FloatArray, Image


class FaceAnalyzer:
    def __init__(self, config: Config) -> None:
        runtime = config.runtime
        self.config = config
        self.detector = FaceDetector(
            open_session(f"blazeface_{config.detector.model}", runtime.backend, runtime.threads),
            config.detector,
        )
        self.aligner: MeshAligner | KeypointAligner = (
            MeshAligner(open_session("face_mesh", runtime.backend, runtime.threads))
            if config.align.refiner == "mesh"
            else KeypointAligner()
        )
        stem = EMBEDDING_MODEL + (".int8" if config.embedder.precision == "int8" else "")
        self.embedder = Embedder(
            open_session(stem, runtime.backend, runtime.threads), config.embedder.batch_size
        )

    @classmethod
    def from_config(cls, config: Config) -> FaceAnalyzer:
        return cls(config)

    @property
    def model_pin(self) -> ModelPin:
        """The embedding model; fp32 and int8 share it (their embeddings interchange)."""
        return embedding_pin()

    @property
    def model_name(self) -> str:
        return self.model_pin.name

    @property
    def model_sha256(self) -> str:
        return self.model_pin.sha256

    def detect(self, image: Image) -> list[Detection]:
        return self.detector.detect(image)

    def align(self, image: Image, detections: list[Detection]) -> list[AlignedFace]:
        return self.aligner.align(image, detections)

    def embed(self, aligned: list[AlignedFace]) -> FloatArray:
        return self.embedder.embed([face.image for face in aligned])

    def analyze(self, image: Image) -> list[Face]:
        """Every face in the frame, in detection order. Faces below the quality floor are kept
        (so callers can report them) but carry no embedding and must not be matched."""
        detections = self.detect(image)
        aligned = self.align(image, detections)
        qualities = [assess(face).score for face in aligned]
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
