"""What ``edge run`` watches and against which list: the bundled demo (its clip, its list
signed with the demo key, its own state directory, publishing only to a broker it was told
about), a bundle given on the command line, or the device's installed list (followed, so that a
newly installed version is switched to while running)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.config import Config, config_from_dict
from edge.config.root import STATE_DIR_ENV
from edge.demo import DEMO_CLIP, DEMO_PUBLIC_KEY, DEMO_WATCHLIST
from edge.errors import WatchlistError
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.source import SourceSpec, parse_source
from edge.watchlist import keys as keyring
from edge.watchlist.install import open_store
from edge.watchlist.matcher import Watchlist


@dataclass(frozen=True)
class RunRequest:
    """``edge run``'s choices on the command line."""

    source: str | None = None  # --source (else capture.source, else the demo)
    watchlist: Path | None = None  # --watchlist BUNDLE (else the installed list)
    pubkey: Path | None = None
    state_dir: Path | None = None
    publish: bool = True  # not --no-publish
    broker_named: bool = False  # --broker or --config: a broker the demo may publish to


@dataclass(frozen=True)
class RunSetup:
    """What the run watches, its analyzer and list, and where its outbox and audit log go."""

    demo: bool
    source: SourceSpec
    analyzer: FaceAnalyzer
    watchlist: Watchlist
    # returns a newer installed list once there is one (the installed list only)
    reload: Callable[[], Watchlist | None] | None
    state_dir: Path | None
    publish: bool


def demo_state_dir() -> Path:
    """Where the demo keeps its outbox and audit log unless told otherwise: never the device's
    own state directory, so that demo alerts cannot mix with real ones."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge" / "demo"


def analyzer_config(config: Config) -> Config:
    """``run.inference_threads`` replaces ``runtime.threads`` for the run's model sessions."""
    threads = config.run.inference_threads
    if threads is None or threads == config.runtime.threads:
        return config
    data = config.model_dump()
    data["runtime"]["threads"] = threads
    return config_from_dict(data)


def installed_watchlist(
    config: Config, state_dir: Path | None, public_key: Path | None
) -> tuple[Watchlist, Callable[[], Watchlist | None]]:
    """The device's installed list and a function that returns a newer one once installed."""
    store = open_store(config, state_dir=state_dir, public_key=public_key)
    watchlist, newer = store.follow(config.watchlist)
    if watchlist is None:
        raise WatchlistError(
            f"no watchlist installed in {store.root}: install one (`edge watchlist install`) or "
            "pass --watchlist BUNDLE"
        )
    return watchlist, newer


def set_up_run(config: Config, request: RunRequest) -> RunSetup:
    """The source, the analyzer, the list (checked active) and the state directory of one run;
    the demo when neither a source (on the command line or in the config) nor a list is given.
    """
    source_text = request.source or config.capture.source
    demo = source_text is None and request.watchlist is None
    spec = parse_source(source_text if source_text is not None else str(DEMO_CLIP))
    analyzer = FaceAnalyzer.from_config(analyzer_config(config))
    reload = None
    bundle = DEMO_WATCHLIST if demo else request.watchlist
    if bundle is not None:
        key = (
            keyring.load_public_key(DEMO_PUBLIC_KEY)
            if demo
            else keyring.trusted_key(
                request.pubkey, config.watchlist.public_key, config.paths(request.state_dir).trust
            )
        )
        watchlist = Watchlist.from_bundle(bundle, key, config.watchlist, analyzer.model_pin)
    else:
        watchlist, reload = installed_watchlist(config, request.state_dir, request.pubkey)
    watchlist.require_active()
    state_dir, publish = request.state_dir, request.publish
    if demo:
        if state_dir is None and not os.environ.get(STATE_DIR_ENV):
            state_dir = demo_state_dir()
        publish = publish and request.broker_named
    return RunSetup(demo, spec, analyzer, watchlist, reload, state_dir, publish)
