"""The live feed behind the console's list: new alerts and reviews, as events for SSE clients.

One thread per serve process polls the database (woken at once by its own ingest), so a console
connected to any process sees the alerts every process stored. With PostgreSQL, rows commit
slightly out of ``seq`` order across processes, so each poll looks back a little and drops what
it has already sent.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping

from edge.dispatch.store import Store
from edge.errors import EdgeError

log = logging.getLogger(__name__)

Listener = Callable[[str, Mapping[str, object]], None]
POLL_S = 0.25
LOOKBACK = 200  # seq values re-read each poll (commits that landed out of order)
SEEN = 20_000


class Feed:
    def __init__(self, store: Store, poll_s: float = POLL_S) -> None:
        self.store = store
        self.poll_s = poll_s
        self._listeners: dict[int, Listener] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seq = 0
        self._review_id = 0
        self._next_key = 0

    def start(self) -> None:
        self._seq = self.store.max_seq()
        self._review_id = self.store.max_review_id()
        # What is already stored is not news: only what arrives from now on is sent.
        for row in self.store.list_alerts(after=max(0, self._seq - LOOKBACK), limit=LOOKBACK + 1):
            self._remember(str(row["alert_id"]))
        for review in self.store.reviews_after(max(0, self._review_id - LOOKBACK)):
            self._remember(f"review:{review.id}")
        self._thread = threading.Thread(target=self._run, name="dispatch-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self, *_: object) -> None:
        self._wake.set()

    def subscribe(self, listener: Listener) -> int:
        with self._lock:
            self._next_key += 1
            self._listeners[self._next_key] = listener
            return self._next_key

    def unsubscribe(self, key: int) -> None:
        with self._lock:
            self._listeners.pop(key, None)

    def _emit(self, kind: str, data: Mapping[str, object]) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            try:
                listener(kind, data)
            except Exception:
                log.exception("feed listener failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            try:
                self._poll()
            except EdgeError as exc:
                log.error("live feed: %s", exc)
                self._stop.wait(1.0)

    def _poll(self) -> None:
        while True:
            rows = self.store.list_alerts(after=max(0, self._seq - LOOKBACK), limit=500)
            fresh = [r for r in rows if r["alert_id"] not in self._seen]
            for row in fresh:
                self._remember(str(row["alert_id"]))
                self._emit("alert", row)
            if rows:
                self._seq = max(self._seq, max(int(r["seq"]) for r in rows))
            if len(rows) < 500 or not fresh:
                break
        for review in self.store.reviews_after(max(0, self._review_id - LOOKBACK)):
            key = f"review:{review.id}"
            if key in self._seen:
                continue
            self._remember(key)
            self._review_id = max(self._review_id, review.id)
            alert = self.store.get_alert(review.alert_id)
            self._emit(
                "review",
                {
                    "alert_id": alert["alert_id"],
                    "state": alert["state"],
                    "reviewed_by": alert["reviewed_by"],
                },
            )

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)
