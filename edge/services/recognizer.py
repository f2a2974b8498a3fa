"""``edge run``'s runtime: capture, inference and alerting on their own threads.

    capture thread --FrameQueue--> inference thread --hit queue--> alert thread --> AlertService
    (decode, reconnect)  (bounded)  (detect, track,    (bounded)   (outbox commit,   (publisher
                                     embed, decide)                  audit, console)   thread)

:class:`Runner` wires one run and holds the inference and alert threads' work. The run's other
jobs have a module each: the main thread (start, watch, reload the list, stop in order:
:mod:`edge.services.supervision`), what it tells (status line, ALERT lines, heartbeat numbers,
``<state_dir>/run-metrics.json``, the summary: :mod:`edge.services.reporting`) and review
decisions fed back into the pipeline (:mod:`edge.services.feedback`). Nothing else is written to
disk: frames, faces, tracks and embeddings only ever live in memory.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from typing import IO, TextIO

from edge.alerts.model import WatchlistRef
from edge.alerts.service import AlertService
from edge.config import Config
from edge.errors import EdgeError
from edge.models import embedding_model_id
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.annotate import Annotator
from edge.pipeline.capture import Capture
from edge.pipeline.decide import Hit
from edge.pipeline.frames import FrameProcessor
from edge.pipeline.handoff import FrameQueue
from edge.pipeline.metrics import StageSet
from edge.pipeline.source import SourceSpec
from edge.services.feedback import ReviewFeedback
from edge.services.reporting import Console, RunReporter, RunResult
from edge.services.run_state import AlertRecord, RunOptions, RunParts, RunProgress
from edge.services.supervision import END_OF_HITS, Supervisor
from edge.watchlist.matcher import Watchlist

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SOURCE_LOST = 1
EXIT_INTERRUPTED = 130
HIT_QUEUE = 256  # decided alerts waiting for their outbox commit (a handful at most, in practice)


class Runner:
    """One run over one source. Build it, call :meth:`run` once (from the main thread, for
    signal handling; from any other thread signals are left alone)."""

    def __init__(
        self,
        config: Config,
        analyzer: FaceAnalyzer,
        watchlist: Watchlist,
        options: RunOptions,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.config = config
        self.watchlist = watchlist
        self.options = options
        self.stages = StageSet("capture", "queue", *FrameProcessor.STAGES, "alert", "frame")
        spec = options.source
        self.frames = FrameQueue(config.capture.queue_frames, lossy=_lossy(spec, config))
        self.capture = Capture(
            spec,
            config.capture,
            self.frames,
            max_frames=options.max_frames,
            stats=self.stages["capture"],
        )
        self.processor = FrameProcessor(
            analyzer, watchlist, config, stages=self.stages, still_images=spec.kind == "folder"
        )
        self.model_id = embedding_model_id(config.embedder.precision)
        self.progress = RunProgress()
        self.alerts: list[AlertRecord] = self.progress.alerts  # the alert thread appends
        self.feedback = ReviewFeedback(self.processor.decider.reject)
        self.console = Console(out or sys.stdout, err or sys.stderr)
        self._hits: queue.Queue[object] = queue.Queue(HIT_QUEUE)
        self._stop = threading.Event()
        parts = RunParts(self.capture, self.frames, self.processor, self.stages)
        self.reporter = RunReporter(
            options,
            parts,
            self.progress,
            self._hits,
            config.paths(options.state_dir).run_metrics,
            self.console,
        )
        self.supervisor = Supervisor(
            config,
            options,
            parts,
            self.reporter,
            self.console,
            self._hits,
            self._stop,
            self.model_id,
            self._switch_watchlist,
        )
        self._failure: BaseException | None = None
        self._annotator: Annotator | None = None
        self._jsonl: IO[str] | None = None
        self._service: AlertService | None = None

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> RunResult:
        self.capture.open()  # a file or folder that cannot be read fails here, before threads
        opts = self.options
        try:
            if self.capture.frame_size is not None:
                self.processor.prepare(*self.capture.frame_size)  # bad tile settings fail here
            if opts.annotate is not None:
                self._annotator = Annotator(
                    opts.annotate,
                    self.capture.fps or 30.0,
                    self.config.run.annotate_unmatched,
                    overwrite=opts.overwrite_annotate,
                )
            if opts.alerts_jsonl is not None:
                try:
                    self._jsonl = opts.alerts_jsonl.open("a", encoding="utf-8")
                except OSError as exc:
                    raise EdgeError(f"cannot write {opts.alerts_jsonl}: {exc.strerror}") from exc
            self._service = AlertService(
                self.config,
                state_dir=opts.state_dir,
                stats_provider=self.reporter.heartbeat_stats,
                on_review=self.feedback.on_review,
            )
            self.supervisor.run(
                self._service, self.watchlist, self._infer, self._deliver, self._annotator
            )
            return self._result()
        finally:
            self.capture.close()
            if self._jsonl is not None:
                self._jsonl.close()

    def _switch_watchlist(self, fresh: Watchlist) -> None:
        self.watchlist = fresh
        self.processor.watchlist = fresh

    # --- inference thread ------------------------------------------------------------------

    def _infer(self) -> None:
        try:
            while (frame := self.frames.get()) is not None:
                picked = time.monotonic()
                if self.progress.first_frame_at is None:
                    self.progress.first_frame_at = frame.read_at
                self.stages["queue"].add((picked - frame.read_at) * 1000)
                result = self.processor.process(frame)
                for hit in result.hits:
                    self._hits.put(hit)
                if self._annotator is not None:
                    self._annotator.write(frame.image, result.faces)
                self.stages["frame"].add((time.monotonic() - frame.read_at) * 1000)
            for hit in self.processor.finish():
                self._hits.put(hit)
        except BaseException as exc:
            self._failure = exc
            log.exception("inference stopped")
            self._stop.set()
            self.frames.close(discard=True)
        finally:
            self.progress.finished_at = time.monotonic()

    # --- alert thread ----------------------------------------------------------------------

    def _deliver(self) -> None:
        while (item := self._hits.get()) is not END_OF_HITS:
            assert isinstance(item, Hit)
            try:
                self._commit(item)
            except EdgeError as exc:
                self.progress.alert_failures += 1
                log.error(
                    "alert for %s (track %d, frame %d) not stored: %s",
                    item.label,
                    item.track_id,
                    item.frame_index,
                    exc,
                )
            except Exception:
                self.progress.alert_failures += 1
                log.exception("alert for track %d not stored", item.track_id)

    def _commit(self, hit: Hit) -> None:
        assert self._service is not None
        started = time.perf_counter()
        watchlist = WatchlistRef(id=self.watchlist.list_id, version=str(self.watchlist.version))
        alert = self._service.hit(
            hit, watchlist=watchlist, model_id=self.model_id, test=self.options.test_alerts
        )
        alert_id = alert.alert_id
        self.feedback.remember(alert_id, hit.track_id, hit.entry_id)
        self.stages["alert"].add((time.perf_counter() - started) * 1000)
        record = AlertRecord(
            alert_id=alert_id,
            entry_id=hit.entry_id,
            label=hit.label,
            score=round(hit.score, 4),
            quality=round(hit.quality, 4),
            track_id=hit.track_id,
            frame=hit.frame_index,
            source_time_s=round(hit.source_time_s, 3),
            event_time=alert.event_time,
            votes=hit.votes,
        )
        self.alerts.append(record)
        if self._jsonl is not None:
            self._jsonl.write(alert.encode().decode("utf-8") + "\n")
            self._jsonl.flush()
        test = " (test)" if self.options.test_alerts else ""
        self._print(
            f"ALERT{test} {record.event_time} {hit.label}: score {hit.score:.3f} "
            f"(threshold {hit.threshold:.3f}), quality {hit.quality:.2f}, track {hit.track_id}, "
            f"frame {hit.frame_index}, {hit.votes} vote(s) [{alert_id}]"
        )

    def _print(self, line: str) -> None:
        self.console.print(line)

    # --- the end ---------------------------------------------------------------------------

    def _result(self) -> RunResult:
        if self._failure is not None:
            raise EdgeError(f"the run stopped on an internal error: {self._failure!r}")
        if self.capture.state == "failed" and self.capture.error is not None:
            raise EdgeError(f"capture from {self.options.source.name} failed: {self.capture.error}")
        signal = self.supervisor.signal
        if signal is not None:
            reason, code = (
                f"stopped by {signal}",
                (EXIT_INTERRUPTED if signal == "SIGINT" else EXIT_OK),
            )
        elif self.capture.state == "lost":
            reason, code = self.capture.describe_end(), EXIT_SOURCE_LOST
        elif self._stop.is_set():
            reason, code = "duration reached (--duration)", EXIT_OK
        else:
            reason, code = self.capture.describe_end(), EXIT_OK
        return self.reporter.finish(reason, code)


def _lossy(spec: SourceSpec, config: Config) -> bool:
    """Live sources, and files played in real time, drop frames rather than wait."""
    return spec.live or (spec.kind == "file" and config.capture.file_pacing == "realtime")
