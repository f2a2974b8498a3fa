"""MobileFaceNet embeddings: aligned 112x112 faces in, L2-normalised 192-d vectors out."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge.backends import InferenceSession
from edge.types import FloatArray, Image

EMBEDDING_DIM = 192


def preprocess(faces_bgr: Sequence[Image]) -> FloatArray:
    """BGR uint8 crops -> the model's input: RGB, (x - 127.5) / 128, NHWC float32."""
    rgb = np.stack([cv2.cvtColor(face, cv2.COLOR_BGR2RGB) for face in faces_bgr])
    return ((rgb.astype(np.float32) - 127.5) * (1 / 128)).astype(np.float32)


def l2_normalise(vectors: FloatArray) -> FloatArray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class Embedder:
    def __init__(self, session: InferenceSession, batch_size: int) -> None:
        self._session = session
        self._batch_size = batch_size

    def embed(self, faces_bgr: Sequence[Image]) -> FloatArray:
        """(N, 192) unit vectors for N aligned faces, run in batches of ``batch_size``."""
        if not faces_bgr:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        chunks = []
        for start in range(0, len(faces_bgr), self._batch_size):
            batch = preprocess(faces_bgr[start : start + self._batch_size])
            (raw,) = self._session.run(batch)
            chunks.append(raw)
        return l2_normalise(np.concatenate(chunks))
