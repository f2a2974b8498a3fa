"""firmware-config: every device profile loads with the config loader (alone and merged with the
example site config), `edge provision` writes a valid config, and the cloud-init user-data
embeds exactly the repository's units, profile and site config."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from paths import REPO

from edge.cli import main
from edge.config import load_config
from edge.errors import ConfigError
from edge.fleet.profiles import compose

FIRMWARE = REPO / "firmware-config"
PROFILES = sorted((FIRMWARE / "profiles").glob("*.yaml"))
SITE = FIRMWARE / "site.example.yaml"


def test_the_four_device_profiles_exist() -> None:
    assert {p.stem for p in PROFILES} == {"rpi4", "rpi5", "jetson-orin-nano", "generic-x86"}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_profile_loads_and_sets_the_hardware_settings(profile: Path) -> None:
    config = load_config(profile)  # the loader itself: unknown keys and bad values fail here
    raw = yaml.safe_load(profile.read_text())
    assert {"backend", "threads"} <= set(raw["runtime"])
    assert "precision" in raw["embedder"] and "model" in raw["detector"]
    assert config.capture.source and config.capture.max_fps > 0
    _, merged = compose(profile, SITE, "cam-test-1")
    assert merged.device.id == "cam-test-1"
    assert merged.runtime == config.runtime and merged.capture == config.capture
    assert merged.sync.lists == ["north-gate", "fleet-default"]
    assert merged.mqtt.tls is not None and merged.api.host == "127.0.0.1"


def test_site_example_loads_alone() -> None:
    config = load_config(SITE)
    assert config.watchlist.public_key == Path("/etc/edge/watchlist-signing.pub")


def test_provision_writes_a_config_that_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "etc" / "edge.yaml"
    profile = FIRMWARE / "profiles" / "rpi5.yaml"
    code = main(
        [
            "provision",
            "--profile",
            str(profile),
            "--site",
            str(SITE),
            "--device-id",
            "cam-9",
            "--out",
            str(out),
        ]
    )
    assert code == 0 and "validated" in capsys.readouterr().out
    assert load_config(out) == compose(profile, SITE, "cam-9")[1]


def test_provision_refuses_a_bad_profile_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("runtime:\n  backend: tensorrt\n")
    assert main(["provision", "--profile", str(bad), "--site", str(SITE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge: error: ") and "runtime.backend" in err and err.count("\n") == 1
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        compose(bad)


def _render_module() -> ModuleType:
    path = FIRMWARE / "first-boot" / "render"
    loader = importlib.machinery.SourceFileLoader("edge_render_user_data", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_user_data_is_rendered_from_the_repository_files(tmp_path: Path) -> None:
    text = (FIRMWARE / "first-boot" / "user-data").read_text()
    render = _render_module()
    assert text == render.render("rpi4", SITE), (
        "user-data is stale: run firmware-config/first-boot/render > firmware-config/first-boot/"
        "user-data"
    )
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    files = {f["path"]: f for f in document["write_files"]}
    for unit in (REPO / "systemd").glob("*.service"):
        assert files[f"/etc/systemd/system/{unit.name}"]["content"] == unit.read_text()
    assert (
        files["/usr/lib/sysusers.d/edge.conf"]["content"]
        == (REPO / "systemd" / "edge.sysusers.conf").read_text()
    )
    for secret in ("mqtt_password", "api_token"):
        assert files[f"/etc/edge/credentials/{secret}"]["permissions"] == "0600"
    # The embedded profile and site give a valid config, as `edge provision` will on the device.
    (tmp_path / "profile.yaml").write_text(files["/etc/edge/profile.yaml"]["content"])
    (tmp_path / "site.yaml").write_text(files["/etc/edge/site.yaml"]["content"])
    compose(tmp_path / "profile.yaml", tmp_path / "site.yaml", "cam-1")
    commands = " ".join(str(c) for c in document["runcmd"])
    for step in ("systemd-sysusers", "pip install", "edge provision", "enable", "edge doctor"):
        assert step in commands
