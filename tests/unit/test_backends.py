"""Runtime plumbing without real inference: variant files, execution providers (with a fake
provider list: no GPU here), and LiteRT's float view of quantized tensors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edge.backends import Placement, open_session
from edge.backends.litert import _dequantizer, _quantizer
from edge.backends.onnx import accelerated_providers, providers_for
from edge.config import Config, config_from_dict
from edge.errors import ConfigError, ModelError
from edge.models import catalog, shipped_precisions, variant_file

JETSON = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
CPU_ONLY = ("AzureExecutionProvider", "CPUExecutionProvider")


@pytest.fixture(autouse=True)
def _fresh_provider_choice() -> None:
    accelerated_providers.cache_clear()


def test_variant_files_follow_one_naming_rule() -> None:
    assert variant_file("mobilefacenet", "litert", "fp32") == "mobilefacenet.tflite"
    assert variant_file("mobilefacenet", "onnx", "int8") == "mobilefacenet.int8.onnx"
    for name in catalog():
        stem, _, rest = name.partition(".")
        precision = rest.split(".")[0] if rest.count(".") else "fp32"
        backend = "litert" if name.endswith(".tflite") else "onnx"
        assert variant_file(stem, backend, precision) == name


def test_shipped_precisions_per_backend() -> None:
    assert shipped_precisions("mobilefacenet", "litert") == ["fp32", "fp16", "int8"]
    assert shipped_precisions("mobilefacenet", "onnx") == ["fp32", "int8"]
    assert shipped_precisions("face_mesh", "litert") == ["fp32"]
    for backend in ("litert", "onnx"):
        for model in ("full_range", "short_range"):
            assert shipped_precisions(f"blazeface_{model}", backend) == ["fp32", "int8"]


def test_a_precision_that_does_not_ship_is_refused_before_loading() -> None:
    with pytest.raises(ModelError, match=r"face_mesh has no int8 model .*shipped: fp32"):
        open_session("face_mesh", "litert", 1, "int8")


@pytest.mark.parametrize("backend", ["litert", "onnx"])
def test_every_shipped_combination_is_a_valid_config(backend: str) -> None:
    for embedder in shipped_precisions("mobilefacenet", backend):
        for detector in ("fp32", "int8"):
            data = Config().model_dump()
            data["runtime"]["backend"] = backend
            data["embedder"]["precision"] = embedder
            data["detector"].update(precision=detector, model="short_range")
            config_from_dict(data)


def test_the_tile_and_crop_detectors_are_checked_too() -> None:
    config = Config()
    names = {model for field, model, _ in config.model_variants() if field == "detector.precision"}
    assert names == {"blazeface_full_range", "blazeface_short_range"}
    with pytest.raises(ConfigError, match=r"^invalid config: embedder\.precision"):
        config_from_dict({"runtime": {"backend": "onnx"}, "embedder": {"precision": "fp16"}})


def test_cpu_placement_never_asks_for_a_gpu() -> None:
    assert providers_for(Placement(2), JETSON) == ["CPUExecutionProvider"]


def test_auto_prefers_tensorrt_then_cuda_and_caches_engines(tmp_path: object) -> None:
    placement = Placement(2, "auto", engine_cache=None)
    assert providers_for(placement, JETSON) == [*JETSON]
    cached = providers_for(Placement(2, "auto", engine_cache=tmp_path), JETSON)  # type: ignore[arg-type]
    name, options = cached[0]
    assert name == "TensorrtExecutionProvider" and options["trt_engine_cache_enable"]
    assert providers_for(placement, ("CUDAExecutionProvider", "CPUExecutionProvider")) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


def test_auto_without_a_gpu_falls_back_with_exactly_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge.backends.onnx")
    for _ in range(3):  # three models load: one line
        assert providers_for(Placement(2, "auto"), CPU_ONLY) == ["CPUExecutionProvider"]
    records = [r for r in caplog.records if r.name == "edge.backends.onnx"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "running on the CPU" in records[0].getMessage()


def test_quantized_io_is_float_to_the_caller() -> None:
    detail = {"dtype": np.int8, "quantization": (0.02, -3)}
    to_model, from_model = _quantizer(detail), _dequantizer(detail)
    values = np.array([[-1.0, 0.0, 0.5, 9.0]], np.float32)
    quantized = to_model(values)
    assert quantized.dtype == np.int8 and quantized.tolist() == [[-53, -3, 22, 127]]
    assert np.allclose(from_model(quantized)[0, :3], values[0, :3], atol=0.01)
    float_detail = {"dtype": np.float32, "quantization": (0.0, 0)}
    assert _quantizer(float_detail)(values) is not None
    assert _dequantizer(float_detail)(values) is values
