"""Building a list (edge.watchlist.build) with a fake analyzer: what is written, what is refused
and that the cheap checks come before the models are loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from watchlist_helpers import DIM, GOOD, MODEL, NO_FACE, FakeAnalyzer, make_keys, write_photo

from edge.config.watchlist import WatchlistConfig
from edge.errors import WatchlistError
from edge.models import ModelPin
from edge.pipeline.images import decode_image
from edge.watchlist.build import BuildRequest, Built, Enroller, Refused, build_list
from edge.watchlist.bundle import read_bundle
from edge.watchlist.enroll import only_face


class PinnedFake(FakeAnalyzer):
    model_pin = MODEL


def _enroller(built: list[PinnedFake]) -> Enroller:
    def make() -> PinnedFake:
        built.append(PinnedFake())
        return built[-1]

    return Enroller(make_analyzer=make, dim=DIM, decode=decode_image, pick=only_face)


def _photos(root: Path, *, carol_usable: bool = True) -> Path:
    write_photo(root / "Alice" / "a1.png", GOOD, 1, 1)
    write_photo(root / "Bob" / "b1.png", GOOD, 2, 1)
    write_photo(root / "Carol" / "c1.png", GOOD if carol_usable else NO_FACE, 3, 1)
    return root


def test_a_full_list_is_written_with_its_dispatch_details(tmp_path: Path) -> None:
    _, public_key, key_path, _ = make_keys(tmp_path)
    request = BuildRequest(
        photos=_photos(tmp_path / "photos"), key=key_path, out=tmp_path / "list", version=7
    )
    outcome = build_list(request, WatchlistConfig(), _enroller([]))
    assert isinstance(outcome, Built)
    assert outcome.manifest.list_id == "photos" and outcome.manifest.version == 7
    assert outcome.manifest.entry_count == 3 and outcome.manifest.model == MODEL
    assert outcome.dispatch_out.is_file()
    assert read_bundle(tmp_path / "list", public_key).manifest == outcome.manifest


def test_a_delta_keeps_its_base_list_and_counts_up(tmp_path: Path) -> None:
    _, _, key_path, _ = make_keys(tmp_path)
    photos = _photos(tmp_path / "photos")
    first = BuildRequest(photos=photos, key=key_path, out=tmp_path / "v1", version=1)
    assert isinstance(build_list(first, WatchlistConfig(), _enroller([])), Built)
    write_photo(photos / "Dave" / "d1.png", GOOD, 4, 1)
    delta = BuildRequest(
        photos=photos,
        key=key_path,
        out=tmp_path / "d2",
        base=tmp_path / "v1",
        full_out=tmp_path / "v2",
        version=2,
    )
    outcome = build_list(delta, WatchlistConfig(), _enroller([]))
    assert isinstance(outcome, Built)
    assert outcome.manifest.kind == "delta" and outcome.manifest.list_id == "photos"
    assert outcome.manifest.delta is not None and outcome.manifest.delta.add_entries == 1
    assert (tmp_path / "v2").is_dir()


def test_an_entry_without_a_usable_photo_refuses_the_build_unless_partial_is_allowed(
    tmp_path: Path,
) -> None:
    _, _, key_path, _ = make_keys(tmp_path)
    photos = _photos(tmp_path / "photos", carol_usable=False)
    request = BuildRequest(photos=photos, key=key_path, out=tmp_path / "list")
    refused = build_list(request, WatchlistConfig(), _enroller([]))
    assert isinstance(refused, Refused) and refused.some_usable
    assert refused.message.startswith("1 of 3 entries have no usable photo (Carol)")
    assert not (tmp_path / "list").exists()
    partial = BuildRequest(photos=photos, key=key_path, out=tmp_path / "list", allow_partial=True)
    outcome = build_list(partial, WatchlistConfig(), _enroller([]))
    assert isinstance(outcome, Built) and outcome.manifest.entry_count == 2


def test_no_usable_photo_at_all_is_refused(tmp_path: Path) -> None:
    _, _, key_path, _ = make_keys(tmp_path)
    write_photo(tmp_path / "photos" / "Alice" / "a1.png", NO_FACE, 1, 1)
    request = BuildRequest(photos=tmp_path / "photos", key=key_path, out=tmp_path / "list")
    refused = build_list(request, WatchlistConfig(), _enroller([]))
    assert isinstance(refused, Refused) and not refused.some_usable
    assert refused.message == f"no usable photo of any current entry in {tmp_path / 'photos'}"


def test_cheap_checks_fail_before_the_models_are_loaded(tmp_path: Path) -> None:
    _, _, key_path, _ = make_keys(tmp_path)
    photos = _photos(tmp_path / "photos")
    built: list[PinnedFake] = []
    expired = BuildRequest(photos=photos, key=key_path, out=tmp_path / "l", expires="2020-01-01")
    with pytest.raises(WatchlistError, match="expired on arrival"):
        build_list(expired, WatchlistConfig(), _enroller(built))
    no_base = BuildRequest(photos=photos, key=key_path, out=tmp_path / "l", full_out=tmp_path)
    with pytest.raises(WatchlistError, match="--full-out goes with --base"):
        build_list(no_base, WatchlistConfig(), _enroller(built))
    assert built == []


def test_a_delta_against_another_models_list_is_refused(tmp_path: Path) -> None:
    _, _, key_path, _ = make_keys(tmp_path)
    photos = _photos(tmp_path / "photos")
    first = BuildRequest(photos=photos, key=key_path, out=tmp_path / "v1", version=1)
    assert isinstance(build_list(first, WatchlistConfig(), _enroller([])), Built)

    class OtherModel(PinnedFake):
        model_pin = ModelPin("arcface-r100", "cd" * 32)

    other = Enroller(make_analyzer=OtherModel, dim=DIM, decode=decode_image, pick=only_face)
    delta = BuildRequest(photos=photos, key=key_path, out=tmp_path / "d2", base=tmp_path / "v1")
    with pytest.raises(WatchlistError, match="build a new full list instead"):
        build_list(delta, WatchlistConfig(), other)
