"""Config section ``watchlist``: matching policy, index settings and where the list lives."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edge.config.base import Section


class WatchlistConfig(Section):
    target_fpir: float = Field(
        0.001,
        gt=0.0,
        lt=1.0,
        description="Default target false-positive identification rate: the share of strangers "
        "(people not on the list) that may raise a match. The threshold is derived from it at "
        "the list's size with the model's impostor calibration (docs/watchlist.md). A list's "
        "own signed policy (a target or a fixed threshold) takes precedence.",
    )
    top_k: int = Field(3, ge=1, le=100, description="Best entries reported per face.")
    index_dtype: Literal["i8", "f16"] = Field(
        "i8",
        description="How `edge watchlist build` stores templates: 'i8' (192 bytes each, "
        "default) or 'f16' (384 bytes, closer to the float scores).",
    )
    connectivity: int = Field(
        20, ge=4, le=64, description="HNSW graph degree used when an index is built."
    )
    expansion_add: int = Field(
        128, ge=8, le=1024, description="HNSW candidate list size while building."
    )
    expansion_search: int = Field(
        96,
        ge=1,
        le=4096,
        description="HNSW candidate list size while searching: higher finds more true nearest "
        "neighbours and costs time. 96 gives recall@1 0.996 at 1,000,000 templates with a "
        "0.77 ms median (edge bench index, docs/watchlist.md).",
    )
    exact_search_max: int = Field(
        10_000,
        ge=0,
        description="Lists with at most this many templates are searched exhaustively (exact "
        "and, at that size, about as fast as the graph); larger ones use the HNSW graph.",
    )
    subdir: str = Field(
        "watchlist",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Folder under the state directory that holds the installed list.",
    )
    public_key: Path | None = Field(
        None,
        description="The hub's Ed25519 public key (PEM). Bundles signed by any other key are "
        "refused. Unset: --pubkey, else the keys `edge keys trust` installed in "
        "<state_dir>/trusted (one is needed to install or run a list).",
    )
    clock_skew_s: int = Field(
        300,
        ge=0,
        le=86_400,
        description="Tolerance, in seconds, when checking a list's valid-from time against "
        "this device's clock. Expiry is never extended.",
    )
    default_validity_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="`edge watchlist build` without --expires makes a list valid this long.",
    )
    keep_releases: int = Field(
        2, ge=1, le=20, description="Installed versions kept on disk (the active one included)."
    )
