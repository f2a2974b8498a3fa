"""A loaded watchlist: what faces are matched against, and loading one from a bundle.

Expired entries are never returned: from the moment they expire (checked on every search) they
are filtered from the results, and the search widens until it has ``k`` live entries or has
seen the whole list; an index held in memory also drops their templates. Outside the list's
validity window nothing matches.
Scores are cosine similarities of the stored templates; an entry's score is its best template's.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.clock import utc_now
from edge.config.watchlist import WatchlistConfig
from edge.errors import WatchlistError
from edge.models import ModelPin
from edge.types import Identification, Match
from edge.watchlist import keys as keyring
from edge.watchlist.bundle import load_full, read_bundle
from edge.watchlist.entries import Entry, ListContent
from edge.watchlist.index import TemplateIndex, entry_of
from edge.watchlist.manifest import Manifest
from edge.watchlist.policy import Calibration, calibration_for, is_expired

log = logging.getLogger(__name__)


def calibration_of(manifest: Manifest) -> Calibration | None:
    """The shipped calibration for the list's model, when its policy needs one."""
    if manifest.policy.mode != "fpir":
        return None
    return calibration_for(manifest.model.name, manifest.model.sha256)


class Watchlist:
    """An installed (or verified) list, ready to search. Thread-safe."""

    def __init__(
        self,
        manifest: Manifest,
        manifest_sha256: str,
        entries: tuple[Entry, ...],
        index: TemplateIndex,
        threshold: float,
        *,
        top_k: int = 3,
        clock_skew_s: int = 300,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.manifest = manifest
        self.manifest_sha256 = manifest_sha256
        self.threshold = threshold
        self.top_k = top_k
        self._index = index
        self._entries = {e.id: e for e in entries}
        self._clock = clock
        self._skew = timedelta(seconds=clock_skew_s)
        self._lock = threading.Lock()
        self._max_templates = max((len(e.templates) for e in entries), default=1)
        expiring = sorted((e.expires_at, e.id) for e in entries if e.expires_at is not None)
        self._expiry_times = [when for when, _ in expiring]
        self._expiry_ids = [entry_id for _, entry_id in expiring]
        self._expired_upto = 0  # entries [0, _expired_upto) of the expiry order are removed
        self._expired: set[int] = set()

    @classmethod
    def from_content(
        cls,
        manifest: Manifest,
        manifest_sha256: str,
        content: ListContent,
        index: TemplateIndex,
        calibration: Calibration | None,
        *,
        top_k: int = 3,
        exact_search_max: int = 10_000,
        clock_skew_s: int = 300,
        clock: Callable[[], datetime] = utc_now,
    ) -> Watchlist:
        threshold = manifest.policy.resolve(calibration, manifest.template_count)
        index.exact_max = exact_search_max
        return cls(
            manifest,
            manifest_sha256,
            content.entries,
            index,
            threshold,
            top_k=top_k,
            clock_skew_s=clock_skew_s,
            clock=clock,
        )

    @classmethod
    def from_bundle(
        cls,
        path: Path,
        public_key: keyring.TrustedKey,
        settings: WatchlistConfig,
        model: ModelPin,
        *,
        top_k: int | None = None,
        view: bool = False,
    ) -> Watchlist:
        """Verify a full bundle and load it for matching with this device's ``model``."""
        bundle = read_bundle(path, public_key)
        m = bundle.manifest
        if m.model != model:
            raise WatchlistError(
                f"{path} was made with model {m.model.name} {m.model.sha256[:12]}..., this "
                f"device runs {model.name} {model.sha256[:12]}..."
            )
        index, content = load_full(bundle, settings.expansion_search, view=view)
        return cls.from_content(
            m,
            bundle.manifest_sha256,
            content,
            index,
            calibration_of(m),
            top_k=top_k or settings.top_k,
            exact_search_max=settings.exact_search_max,
            clock_skew_s=settings.clock_skew_s,
        )

    # --- state ------------------------------------------------------------------------------

    @property
    def list_id(self) -> str:
        return self.manifest.list_id

    @property
    def version(self) -> int:
        return self.manifest.version

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[i] for i in sorted(self._entries)]

    def active_state(self, now: datetime | None = None) -> str:
        """'active', 'not yet valid' or 'expired' for the list as a whole."""
        now = now or self._clock()
        if is_expired(self.manifest.valid_until_at, now):
            return "expired"
        if now + self._skew < self.manifest.valid_from_at:
            return "not yet valid"
        return "active"

    def _drop_expired(self, now: datetime) -> None:
        upto = bisect.bisect_right(self._expiry_times, now)
        if upto <= self._expired_upto:
            return
        newly = self._expiry_ids[self._expired_upto : upto]
        keys = np.asarray(
            [t.key for i in newly for t in self._entries[i].templates], dtype=np.uint64
        )
        if not self._index.read_only:  # a memory-mapped index cannot change: filter only
            self._index.remove(keys)
        self._expired.update(newly)
        self._expired_upto = upto
        log.info("watchlist %s: %d entries expired and removed", self.list_id, len(newly))

    # --- search -----------------------------------------------------------------------------

    def search(
        self, embedding: npt.ArrayLike, k: int | None = None, now: datetime | None = None
    ) -> list[Match]:
        """The best ``k`` entries for one embedding; none if the list is not in force."""
        k = k or self.top_k
        now = now or self._clock()
        with self._lock:
            if self.active_state(now) != "active":
                return []
            self._drop_expired(now)
            return self._search(np.asarray(embedding, dtype=np.float32), k, now)

    def _search(self, query: npt.NDArray[np.float32], k: int, now: datetime) -> list[Match]:
        size = len(self._index)
        count = min(size, max(4 * k, k * min(self._max_templates, 8), 16))
        while True:
            (hits,) = self._index.search(query, count)
            best: dict[int, tuple[float, int]] = {}
            for key, score, entry_id in zip(
                hits.keys.tolist(), hits.scores.tolist(), entry_of(hits.keys).tolist(), strict=True
            ):
                if entry_id in self._expired or entry_id not in self._entries:
                    continue
                if is_expired(self._entries[entry_id].expires_at, now):
                    continue  # belt and braces: _drop_expired has already removed it
                if entry_id not in best or score > best[entry_id][0]:
                    best[entry_id] = (score, key)
            if len(best) >= k or count >= size:
                break
            count = min(size, count * 4)
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:k]
        out = []
        for entry_id, (score, key) in ranked:
            entry = self._entries[entry_id]
            out.append(Match(entry_id, entry.label, score, key, entry.reason, entry.case_ref))
        return out

    def identify(self, embedding: npt.ArrayLike, now: datetime | None = None) -> Identification:
        return Identification(tuple(self.search(embedding, now=now)), self.threshold)

    def require_active(self, now: datetime | None = None) -> None:
        state = self.active_state(now)
        if state == "expired":
            raise WatchlistError(
                f"watchlist {self.list_id} v{self.version} expired at "
                f"{self.manifest.valid_until}: it matches nothing"
            )
        if state == "not yet valid":
            raise WatchlistError(
                f"watchlist {self.list_id} v{self.version} is valid only from "
                f"{self.manifest.valid_from}: it matches nothing yet"
            )
