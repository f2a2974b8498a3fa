"""Config sections of the recognition core: ``runtime``, ``detector``, ``align``, ``quality`` and
``embedder`` (what `edge detect`, `edge compare` and `edge run` share)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section


class RuntimeConfig(Section):
    backend: Literal["litert", "onnx"] = Field(
        "litert",
        description="Inference runtime: 'litert' (LiteRT with XNNPACK, the original .tflite "
        "files; the faster one on this project's 2-core x86 machine: 73 against 57 frames/s "
        "with one face, `edge bench speed`) or 'onnx' (ONNX Runtime; the only one that runs the "
        "int8 embedder). Run `edge bench speed` on the device to choose.",
    )
    threads: int = Field(
        2, ge=1, le=64, description="Threads per model session (intra-op). Match the cores."
    )


class DetectorConfig(Section):
    model: Literal["full_range", "short_range"] = Field(
        "full_range",
        description="BlazeFace variant: 'full_range' (192x192 input, faces up to ~5 m away) or "
        "'short_range' (128x128, faster, faces within ~2 m: selfie/doorbell distance).",
    )
    score_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Minimum detection confidence (after sigmoid)."
    )
    nms_iou: float = Field(
        0.3, gt=0.0, lt=1.0, description="IoU above which overlapping boxes merge (weighted NMS)."
    )
    min_face_px: int = Field(
        20, ge=1, description="Faces whose box is narrower than this (in frame pixels) are dropped."
    )
    max_faces: int = Field(32, ge=1, description="At most this many faces per frame, best first.")


class AlignConfig(Section):
    refiner: Literal["mesh", "none"] = Field(
        "mesh",
        description="Where the five alignment points come from. 'mesh' runs MediaPipe's face "
        "mesh on each face (+~4 ms per face; LFW 0.9923); 'none' uses BlazeFace's own keypoints "
        "(LFW 0.9887). See edge/pipeline/align.py for the measurements.",
    )


class QualityConfig(Section):
    min_quality: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="Faces whose quality score (0-1, from size, sharpness and pose) is below "
        "this are neither embedded nor matched.",
    )


class EmbedderConfig(Section):
    precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description="MobileFaceNet weights: 'fp32' (original) or 'int8' (QDQ, ONNX Runtime "
        "only). fp32 is the default: int8 embeds 1.5x faster but makes more errors "
        "(edge/models/SOURCES.md).",
    )
    batch_size: int = Field(8, ge=1, le=64, description="Faces embedded per model call.")
