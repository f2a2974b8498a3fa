"""Typed config: defaults are valid, unknown keys and bad values are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli.config import commented_defaults
from edge.config import Config, load_config
from edge.config.secrets import read_secret
from edge.errors import ConfigError


def test_printed_defaults_load_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "defaults.yaml"
    path.write_text("\n".join(commented_defaults(Config())) + "\n")
    assert load_config(path) == Config()


def test_every_field_is_documented() -> None:
    def walk(model: type[Config] | type, prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description and not hasattr(field.annotation, "model_fields"):
                missing.append(prefix + name)
            if hasattr(field.annotation, "model_fields"):
                missing += walk(field.annotation, f"{prefix}{name}.")
        return missing

    assert walk(Config, "") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("detector:\n  score_treshold: 0.4\n", "detector.score_treshold: Extra inputs"),
        ("runtime:\n  backend: tensorrt\n", "runtime.backend"),
        ("runtime:\n  threads: 0\n", "runtime.threads"),
        (
            "embedder:\n  precision: fp16\nruntime:\n  backend: onnx\n",
            "embedder.precision 'fp16' does not exist for runtime.backend 'onnx' (mobilefacenet "
            "ships in fp32, int8)",
        ),
        ("detector:\n  precision: fp16\n", "detector.precision"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("detector: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_secrets_come_from_credentials_before_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_MQTT_PASSWORD", "from-env")
    assert read_secret("mqtt_password") == "from-env"
    (tmp_path / "mqtt_password").write_text("from-credentials\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_secret("mqtt_password") == "from-credentials"
