"""Config sections of the recognition core: ``runtime``, ``detector``, ``align``, ``quality`` and
``embedder`` (what `edge detect`, `edge compare` and `edge run` share)."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import Section


class RuntimeConfig(Section):
    backend: Literal["litert", "onnx"] = Field(
        "litert",
        description="Inference runtime: 'litert' (LiteRT with XNNPACK, the original .tflite "
        "files; the faster one on this project's 2-core x86 machine: 73 against 57 frames/s "
        "with one face, `edge bench speed`) or 'onnx' (ONNX Runtime; on a GPU through "
        "runtime.providers). Run `edge bench speed` on the device to choose.",
    )
    threads: int = Field(
        2, ge=1, le=64, description="Threads per model session (intra-op). Match the cores."
    )
    providers: Literal["cpu", "auto"] = Field(
        "cpu",
        description="ONNX Runtime's execution providers: 'cpu', or 'auto': TensorRT, else CUDA, "
        "when the installed onnxruntime offers them (a Jetson's onnxruntime-gpu), else the CPU "
        "with one warning. TensorRT engines are cached in <state_dir>/tensorrt. Ignored by "
        "'litert'.",
    )


class TileLevelConfig(Section):
    size: int = Field(
        ge=64,
        le=16384,
        description="Side of each square tile, in frame pixels; each tile is letterboxed to the "
        "detector's input on its own.",
    )
    overlap: int = Field(
        ge=0,
        description="Pixels neighbouring tiles share at least: the widest face this level must "
        "see whole (wider ones belong to a coarser level or the whole-frame pass).",
    )

    @model_validator(mode="after")
    def _overlap_inside(self) -> TileLevelConfig:
        if self.overlap >= self.size:
            raise ValueError(
                f"overlap {self.overlap} must be smaller than the tile size {self.size}"
            )
        return self


class DetectorConfig(Section):
    model: Literal["full_range", "short_range"] = Field(
        "full_range",
        description="BlazeFace variant: 'full_range' (192x192 input, faces up to ~5 m away) or "
        "'short_range' (128x128, faster, faces within ~2 m: selfie/doorbell distance).",
    )
    precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description="BlazeFace weights, for the whole frame, tiles and crops: 'fp32' (the "
        "original; LiteRT's file keeps Google's float16 weights) or 'int8' (static int8 "
        "calibrated on LFW, output heads float; both runtimes). int8 measured slower on this "
        "project's x86 machine and moves boxes a little (edge/models/SOURCES.md).",
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
    max_faces: int = Field(
        64,
        ge=1,
        description="At most this many faces per frame, best first (tiles find many small faces "
        "in a crowd, and small faces score lowest).",
    )
    tiling: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Multi-scale detection for faces too small for the whole-frame pass (which "
        "shrinks the frame to the model's 192x192 input, so a face must be about a tenth of "
        "the frame's width). 'auto': frames whose longer side is above tiling_above_px are also "
        "scanned in overlapping native-resolution tiles; 'on': every frame is; 'off': the "
        "whole frame only. Measured in docs/recognition.md.",
    )
    tiling_above_px: int = Field(
        800,
        ge=0,
        description="'auto' tiling starts above this longer side. Below it, a face the "
        "whole-frame pass misses is already close to the size limit for matching "
        "(quality.min_eye_px), and tiles would cost more than they find.",
    )
    tiles: list[TileLevelConfig] | None = Field(
        None,
        description="Tile levels, coarse to fine (each a 'size' and an 'overlap' in frame "
        "pixels). Unset: derived from the frame size so that faces down to smallest_face_px "
        "are found (1920x1080: 768 px tiles overlapping 256, and 384 px overlapping 112). A "
        "level whose tiles are larger than a video's frames is an error; stills smaller than a "
        "tile skip that level.",
    )
    smallest_face_px: float = Field(
        32.0,
        ge=12.0,
        le=512.0,
        description="Derived tiles: the finest level is sized so that faces this wide (frame "
        "pixels) are found about 3 times in 4, and wider ones almost always.",
    )
    tile_threshold: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="Minimum detection confidence in tiles and crops.",
    )
    verify_presence: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="A face found only in tiles or crops (not by the whole-frame pass) is kept "
        "when the face mesh's presence probability reaches this: it removes about 3 in 4 of "
        "the tiles' false detections. 0 keeps them all.",
    )
    tiles_per_frame: int = Field(
        3,
        ge=1,
        le=1024,
        description="Video: tiles scanned per frame, in a rotating cycle that visits every tile "
        "(1920x1080: 36 tiles, each every 12 frames, about half a second at 25 fps). Stills "
        "get every tile.",
    )
    max_crops: int = Field(
        6,
        ge=0,
        le=64,
        description="Video: at most this many crops a frame around tracked faces too small for "
        "the whole-frame pass, most stale first, so a small face is followed every frame. 0: "
        "none.",
    )
    crop_model: Literal["short_range", "full_range"] = Field(
        "short_range",
        description="Model for the crops around tracked faces: 'short_range' costs about a "
        "third of 'full_range' per crop and finds a face of known size as well, except faces "
        "over about 100 px, which the coarse tiles find anyway.",
    )

    @model_validator(mode="after")
    def _levels_coarse_to_fine(self) -> DetectorConfig:
        sizes = [level.size for level in self.tiles or []]
        if any(b >= a for a, b in itertools.pairwise(sizes)):
            raise ValueError("tiles: give the levels coarse to fine, each smaller than the last")
        return self


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
    min_eye_px: float = Field(
        16.0,
        ge=4.0,
        le=200.0,
        description="Faces whose eyes are closer than this in the frame (pixels) are tracked "
        "but never embedded or matched: below 16 px the right person is the top candidate less "
        "than 90 % of the time (edge bench far, docs/recognition.md). A track waits for a "
        "larger shot as the person comes closer.",
    )


class EmbedderConfig(Section):
    precision: Literal["fp32", "fp16", "int8"] = Field(
        "fp32",
        description="MobileFaceNet weights: 'fp32' (the original), 'fp16' (float16 weights, "
        "LiteRT only) or 'int8' (LiteRT: int8 weights with float activations; ONNX Runtime: "
        "static int8 QDQ). All stay within 0.0015 of fp32 on LFW (edge/models/SOURCES.md); "
        "templates made with one compare with any other.",
    )
    batch_size: int = Field(8, ge=1, le=64, description="Faces embedded per model call.")
