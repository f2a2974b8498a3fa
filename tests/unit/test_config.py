"""Typed config: defaults are valid, unknown keys and bad values are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from input_helpers import dev_zero, fifo, sparse, write

from edge.cli import main
from edge.cli.config import commented_defaults
from edge.config import Config, config_from_dict, load_config
from edge.config.root import MAX_CONFIG_BYTES
from edge.config.secrets import MAX_SECRET_BYTES, read_secret
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


# --- hardening (issue 12): topic prefixes, bounded reads, bytes that are not UTF-8 -------------


@pytest.mark.parametrize(
    "prefix", ["edge/#", "edge/+/v1", "#", "edge//v1", "/edge", "edge/v1//", "ed\x00ge", "$SYS/x"]
)
def test_a_topic_prefix_that_cannot_be_published_to_is_refused_at_load(
    tmp_path: Path, prefix: str
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(f"mqtt:\n  topic_prefix: {json.dumps(prefix)}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "mqtt.topic_prefix" in message and "\n" not in message


def test_edge_config_check_refuses_a_wildcard_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text('mqtt:\n  topic_prefix: "edge/#"\n')
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge: error: invalid config") and "'+' or '#'" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("prefix", ["edge/v1", "edge/v1/", "a", "site-1/edge cams/v2", "ü/x"])
def test_ordinary_topic_prefixes_load(prefix: str) -> None:
    assert config_from_dict({"mqtt": {"topic_prefix": prefix}}).mqtt.topic_prefix == prefix


def test_a_config_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_bytes(b"device:\n  id: cam-\xff\xfe\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"edge: error: config {path} is not UTF-8") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: dev_zero(p), "is a character device, not a regular file"),
        (lambda p: fifo(p), "is a FIFO, not a regular file"),
        (lambda p: sparse(p, MAX_CONFIG_BYTES + 1), f"larger than {MAX_CONFIG_BYTES} bytes"),
    ],
    ids=["dev-zero", "fifo", "huge"],
)
def test_a_config_that_is_not_a_small_regular_file_is_refused_unread(
    tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path / "edge.yaml")  # type: ignore[operator]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize(
    "text",
    ["a: 2024-13-45\n", "a: !!float abc\n", "a: !!int 0x\n", "[" * 5000 + "]" * 5000],
    ids=["bad-date", "bad-float", "bad-int", "deep"],
)
def test_yaml_the_loader_chokes_on_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="is not valid YAML") as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def _alias_bomb(levels: int) -> str:
    """Each level an anchored list of ten aliases of the one before: 10**levels values."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 33 + "]" * 33, "nested more than 32 levels deep"),
        ("a:\n" + "".join("  " * i + "- b:\n" for i in range(40)), "nested more than 32"),
        ("[" * 200_000 + "]" * 200_000, "exceeded maximum nesting depth"),
        (_alias_bomb(9), "expands to more than 100,000 values"),
    ],
    ids=["flow", "block", "very-deep", "alias-bomb"],
)
def test_hostile_yaml_is_refused_from_its_shape_before_a_document_is_built(
    tmp_path: Path, text: str, message: str
) -> None:
    """The loader refuses these from the parse events alone: building the document first cost
    seconds of recursion (deep nesting) or billions of values (the alias bomb is 10**9)."""
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="is not valid YAML") as caught:
        load_config(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_aliases_within_the_bound_still_load(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("device:\n  id: &name cam-1\n  location: {name: *name}\n")
    assert load_config(path).device.location.name == "cam-1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write(p, b"secr\xffet\n"), "is not UTF-8 text"),
        (lambda p: fifo(p), "is a FIFO, not a regular file"),
        (lambda p: dev_zero(p), "is a character device"),
        (lambda p: sparse(p, MAX_SECRET_BYTES + 1), "is larger than"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
    ],
    ids=["not-utf8", "fifo", "dev-zero", "huge", "directory"],
)
def test_a_bad_credential_is_a_config_error_that_never_quotes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: object, message: str
) -> None:
    path = make(tmp_path / "mqtt_password")  # type: ignore[operator]
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        read_secret("mqtt_password")
    text = str(caught.value)
    assert message in text and f"credential {path}" in text
    assert "secr" not in text and "\n" not in text
