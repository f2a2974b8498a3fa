"""The main thread of ``edge run``: it starts the inference and alert threads, keeps watch
(duration limit, systemd watchdog, the status line's rhythm, ``run-metrics.json``, watchlist
reloads, SIGINT/SIGTERM) and stops everything in order.

Order of the stop: capture first, then inference (draining the queue when the source ended by
itself, discarding it on a signal), then alerting, which commits every decided alert to the
outbox before the alert service (publisher, outbox, audit log) is closed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from edge.alerts.service import AlertService
from edge.config import Config
from edge.errors import EdgeError
from edge.pipeline.annotate import Annotator
from edge.services.reporting import Console, RunReporter
from edge.services.run_state import RunOptions, RunParts
from edge.system.sdnotify import Notifier
from edge.system.signals import stop_on_signals
from edge.watchlist.matcher import Watchlist

# The run's log lines keep the one logger name they had before the Runner was split.
log = logging.getLogger("edge.services.recognizer")

STATUS_EVERY_S = 1.0
WATCHLIST_POLL_S = 10.0
RUN_METRICS_EVERY_S = 5.0  # <state_dir>/run-metrics.json, and once more at the end
CAPTURE_JOIN_S = 2.0
WATCHDOG_STALL_S = 10.0  # frames waiting and none taken for this long: inference is stuck
END_OF_HITS = object()  # put on the hit queue once inference has ended: the alert thread stops


def announce(service: AlertService, watchlist: Watchlist, model_id: str) -> None:
    """Tell the fleet (retained status, audit log) which list this run matches against."""
    service.status(
        model_id=model_id, watchlist_id=watchlist.list_id, watchlist_version=watchlist.version
    )
    service.watchlist_changed(
        watchlist_id=watchlist.list_id,
        version=watchlist.version,
        change="loaded",
        entries=len(watchlist),
    )


class Supervisor:
    """One run's threads, from start to the ordered stop. ``signal`` names the signal that
    stopped the run, if one did; ``stop`` is set by a signal, the duration limit, or a failed
    inference thread."""

    def __init__(
        self,
        config: Config,
        options: RunOptions,
        parts: RunParts,
        reporter: RunReporter,
        console: Console,
        hits: queue.Queue[object],
        stop: threading.Event,
        model_id: str,
        on_switch: Callable[[Watchlist], None],
    ) -> None:
        self.config = config
        self.options = options
        self.parts = parts
        self.reporter = reporter
        self.console = console
        self._hits = hits
        self.stop = stop
        self.signal: str | None = None
        self._model_id = model_id
        self._on_switch = on_switch  # the pipeline matches against the new list from now on
        self._notifier = Notifier.from_environment()  # systemd Type=notify and WatchdogSec=

    def run(
        self,
        service: AlertService,
        watchlist: Watchlist,
        infer: Callable[[], None],
        deliver: Callable[[], None],
        annotator: Annotator | None,
    ) -> None:
        """Start the threads (``infer`` and ``deliver`` are their bodies), watch until the end,
        stop them in order and write the last ``run-metrics.json``."""
        self.watchlist = watchlist
        restore = stop_on_signals(self._on_signal, second_signal_interrupts=True)
        inference = threading.Thread(target=infer, name="inference", daemon=True)
        delivery = threading.Thread(target=deliver, name="alerts", daemon=True)
        try:
            announce(service, watchlist, self._model_id)
            if self.options.publish:
                service.start()
            log.info(
                "watching %s with watchlist %s v%d (%d entries, threshold %.4f); detection: %s",
                self.options.source.name,
                watchlist.list_id,
                watchlist.version,
                len(watchlist),
                watchlist.threshold,
                self.parts.processor.tiling,
            )
            self.reporter.progress.started = time.monotonic()
            delivery.start()
            inference.start()
            self.parts.capture.start()
            self._notifier.ready(f"watching {self.options.source.name}")
            self._supervise(inference, service)
        finally:
            self._notifier.stopping()
            self._shutdown(inference, delivery, service, annotator)
            self.reporter.write_run_metrics()
            restore()

    def _supervise(self, inference: threading.Thread, service: AlertService) -> None:
        """The main thread: status line, duration limit, watchlist reloads, until the end."""
        processor, progress = self.parts.processor, self.reporter.progress
        next_status = time.monotonic() + STATUS_EVERY_S
        next_log = time.monotonic() + self.config.run.status_log_s
        next_poll = time.monotonic() + WATCHLIST_POLL_S
        next_metrics = time.monotonic() + RUN_METRICS_EVERY_S
        last = (time.monotonic(), 0)
        taken = (time.monotonic(), 0)  # when inference last took a frame
        while inference.is_alive():
            if self.stop.wait(0.2):
                return
            now = time.monotonic()
            if processor.frames != taken[1]:
                taken = (now, processor.frames)
            # systemd's watchdog is fed while inference keeps up: idle (no frame waiting, e.g. a
            # camera reconnecting) or taking frames. Inference stuck with frames waiting starves it
            # and systemd restarts the service.
            if not len(self.parts.frames) or now - taken[0] < WATCHDOG_STALL_S:
                self._notifier.watchdog()
            limit = self.options.duration_s
            if limit is not None and now - progress.started >= limit:
                log.info("stopping after %.0f s (--duration)", limit)
                self.stop.set()
                return
            if now >= next_status:
                fps = (processor.frames - last[1]) / max(now - last[0], 1e-6)
                last = (now, processor.frames)
                progress.fps_now = fps
                next_status = now + STATUS_EVERY_S
                line = self.reporter.status_text(fps)
                self._notifier.status(line)
                if self.options.status_line and self.console.err.isatty():
                    self.console.draw_status(line)
                elif self.config.run.status_log_s and now >= next_log:
                    next_log = now + self.config.run.status_log_s
                    log.info("%s", line)
            if now >= next_metrics:
                next_metrics = now + RUN_METRICS_EVERY_S
                self.reporter.write_run_metrics()
            if self.options.reload_watchlist is not None and now >= next_poll:
                next_poll = now + WATCHLIST_POLL_S
                self._maybe_reload(self.options.reload_watchlist, service)

    def _maybe_reload(self, reload: Callable[[], Watchlist | None], service: AlertService) -> None:
        try:
            fresh = reload()
        except EdgeError as exc:
            log.error("keeping watchlist %s: %s", self.watchlist.list_id, exc)
            return
        if fresh is None:
            return
        self.watchlist = fresh
        self._on_switch(fresh)
        announce(service, fresh, self._model_id)
        log.info(
            "switched to watchlist %s v%d (%d entries)", fresh.list_id, fresh.version, len(fresh)
        )

    def _shutdown(
        self,
        inference: threading.Thread,
        delivery: threading.Thread,
        service: AlertService,
        annotator: Annotator | None,
    ) -> None:
        capture, frames = self.parts.capture, self.parts.frames
        aborting = self.stop.is_set()
        capture.stop()
        if aborting:
            frames.close(discard=True)
        if inference.ident is not None:
            inference.join()
        self._hits.put(END_OF_HITS)
        if delivery.ident is not None:
            delivery.join()
        if not capture.join(CAPTURE_JOIN_S):
            frames.close(discard=True)
            log.warning("capture thread still blocked in a read; leaving it behind")
        if annotator is not None:
            annotator.close()
        service.publisher.stop()  # drains what it can; the rest waits in the outbox
        self.reporter.count_waiting(service)
        service.stop()
        self.console.end_status()

    def _on_signal(self, name: str) -> None:
        self.signal = name
        self.stop.set()
