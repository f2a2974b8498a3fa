"""Installing a fetched transfer, on a second thread so the MQTT loop goes on meanwhile: the
archive's sha256, unpacking (only the bundle's own files), and
:meth:`edge.watchlist.install.WatchlistStore.install`, which runs every check of the watchlist
(signature, hashes, model, validity, list, version, base, content) and swaps the list
atomically, or refuses and keeps the old one.
"""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor

from edge.config.sync import SyncConfig
from edge.errors import BundleError, EdgeError, SyncError
from edge.fleet.fetch import Fetch, ListState, SyncCounters
from edge.fleet.protocol import unpack_bundle
from edge.watchlist.install import InstallResult, WatchlistStore

# The name these lines always had: operators and their log filters know it.
log = logging.getLogger("edge.fleet.sync")


class Installer:
    """At most one install at a time (:attr:`fetch`: the transfer being installed)."""

    def __init__(self, store: WatchlistStore, sync: SyncConfig, counters: SyncCounters) -> None:
        self.store = store
        self.sync = sync
        self.counters = counters
        self.fetch: Fetch | None = None
        self._future: Future[InstallResult] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-install")

    @property
    def busy(self) -> bool:
        return self._future is not None

    def begin(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self._future = self._executor.submit(self._install, fetch)

    def done(self) -> bool:
        return self._future is not None and self._future.done()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)

    def _install(self, fetch: Fetch) -> InstallResult:
        """On the installer thread: archive digest, unpack, every watchlist check, swap."""
        partial = fetch.partial
        try:
            archive = partial.finish()
            shutil.rmtree(partial.unpacked, ignore_errors=True)
            unpack_bundle(archive, partial.unpacked, partial.info)
            return self.store.install(partial.unpacked, replace_list=fetch.replace_list)
        finally:
            partial.close()

    def finish(self, state: ListState) -> InstallResult | None:
        """The finished install's outcome, told in ``state`` and the counters; the result if
        the list was installed."""
        future, fetch = self._future, self.fetch
        assert future is not None and fetch is not None
        self._future = self.fetch = None
        sha = fetch.partial.info.sha256
        try:
            result = future.result()
        except BundleError as exc:
            log.error("list %s v%d: %s", fetch.list_id, fetch.announcement.version, exc)
            state.refused.add(sha)
            state.state, state.detail = "refused", str(exc)
            self.counters.refusals += 1
            fetch.partial.discard()
        except SyncError as exc:
            log.error(
                "list %s: %s; fetching it again in %.0fs",
                fetch.list_id,
                exc,
                self.sync.retry_s,
            )
            state.state, state.detail = "failed", str(exc)
            state.retry_at[sha] = time.monotonic() + self.sync.retry_s
            self.counters.transfers_failed += 1
            fetch.partial.discard()
        except EdgeError as exc:
            log.error("list %s: install failed: %s", fetch.list_id, exc)
            state.state, state.detail = "failed", str(exc)
            state.retry_at[sha] = time.monotonic() + self.sync.retry_s
            self.counters.transfers_failed += 1
        except Exception as exc:
            log.exception("list %s: install failed", fetch.list_id)
            state.state, state.detail = "failed", repr(exc)
            state.retry_at[sha] = time.monotonic() + self.sync.retry_s
            self.counters.transfers_failed += 1
        else:
            self.counters.installs += 1
            fetch.partial.discard()
            elapsed = time.monotonic() - fetch.started
            state.state = "current"
            state.detail = f"version {result.version} installed"
            log.info(
                "list %s v%d installed from a %s transfer (%d bytes, %.1fs); was %s",
                result.list_id,
                result.version,
                result.kind,
                fetch.partial.info.size,
                elapsed,
                f"v{result.previous_version}" if result.previous_version else "none",
            )
            return result
        return None
