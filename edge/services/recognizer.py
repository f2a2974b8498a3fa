"""``edge run``'s runtime: capture, inference and alerting on their own threads.

    capture thread --FrameQueue--> inference thread --hit queue--> alert thread --> AlertService
    (decode, reconnect)  (bounded)  (detect, track,    (bounded)   (outbox commit,   (publisher
                                     embed, decide)                  audit, console)   thread)

The main thread starts them, draws the status line, keeps ``<state_dir>/run-metrics.json``
current (for ``edge sync``'s local API, broker or not), handles SIGINT/SIGTERM and stops them in
order: capture first, then inference (draining the queue when the source ended by itself,
discarding it on a signal), then alerting, which commits every decided alert to the outbox
before the alert service (publisher, outbox, audit log) is closed. Nothing else is written to
disk: frames, faces, tracks and embeddings only ever live in memory.

Review decisions from dispatch arrive on the publisher's thread (:meth:`Runner.on_review`): a
rejected alert ("not this person") is mapped back to its track and entry and handed to the
pipeline's decider, so that track does not alert for that entry again.
"""

from __future__ import annotations

import json
import logging
import queue
import resource
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from edge.alerts.model import Review, WatchlistRef
from edge.alerts.service import AlertService
from edge.clock import utc_rfc3339
from edge.config import Config
from edge.errors import EdgeError
from edge.models import embedding_model_id
from edge.pipeline.analyzer import FaceAnalyzer
from edge.pipeline.annotate import Annotator
from edge.pipeline.capture import Capture, FrameQueue
from edge.pipeline.decide import Hit
from edge.pipeline.frames import FrameProcessor
from edge.pipeline.metrics import StageSet, write_run_metrics
from edge.pipeline.source import SourceSpec
from edge.system.sdnotify import Notifier
from edge.system.signals import stop_on_signals
from edge.watchlist.matcher import Watchlist

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SOURCE_LOST = 1
EXIT_INTERRUPTED = 130
HIT_QUEUE = 256  # decided alerts waiting for their outbox commit (a handful at most, in practice)
STATUS_EVERY_S = 1.0
WATCHLIST_POLL_S = 10.0
RUN_METRICS_EVERY_S = 5.0  # <state_dir>/run-metrics.json, and once more at the end
CAPTURE_JOIN_S = 2.0
WATCHDOG_STALL_S = 10.0  # frames waiting and none taken for this long: inference is stuck
ALERTS_REMEMBERED = 10_000  # alert id -> (track, entry), for review decisions that come later
_END = object()


@dataclass
class RunOptions:
    """What one ``edge run`` does, beyond the config file."""

    source: SourceSpec
    state_dir: Path | None = None
    alerts_jsonl: Path | None = None
    annotate: Path | None = None
    overwrite_annotate: bool = False  # --force: replace an existing --annotate file
    metrics_json: Path | None = None
    max_frames: int | None = None
    duration_s: float | None = None
    publish: bool = True
    test_alerts: bool = False  # mark alerts as tests (the demo's are not real sightings)
    status_line: bool = True
    # Called every few seconds; returns a newly installed watchlist to switch to, or None.
    reload_watchlist: Callable[[], Watchlist | None] | None = None


@dataclass(frozen=True)
class AlertRecord:
    """An alert this run committed, with where in the source it came from."""

    alert_id: str
    entry_id: int
    label: str
    score: float
    quality: float
    track_id: int
    frame: int
    source_time_s: float
    event_time: str
    votes: int


@dataclass
class RunResult:
    reason: str
    exit_code: int
    alerts: list[AlertRecord] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


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
        self.analyzer = analyzer
        self.watchlist = watchlist
        self.options = options
        self.out = out or sys.stdout
        self.err = err or sys.stderr
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
        self.alerts: list[AlertRecord] = []
        self.alert_failures = 0
        self._alert_tracks: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._alert_tracks_lock = threading.Lock()
        self._hits: queue.Queue[object] = queue.Queue(HIT_QUEUE)
        self._stop = threading.Event()
        self._signal: str | None = None
        self._failure: BaseException | None = None
        self._print_lock = threading.Lock()
        self._status_drawn = False
        self._started = time.monotonic()
        self._first_frame_at: float | None = None
        self._fps_now = 0.0  # over the last second, for the heartbeat
        self._finished_at: float | None = None
        self._annotator: Annotator | None = None
        self._jsonl: IO[str] | None = None
        self._service: AlertService | None = None
        self._outbox_left: dict[str, Any] | None = None  # what still waits, once alerting stopped
        self._run_metrics_path = config.paths(options.state_dir).run_metrics
        self._run_metrics_failed = False
        self._notifier = Notifier.from_environment()  # systemd Type=notify and WatchdogSec=

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
                stats_provider=self.heartbeat_stats,
                on_review=self.on_review,
            )
            return self._run(self._service)
        finally:
            self.capture.close()
            if self._jsonl is not None:
                self._jsonl.close()

    def _run(self, service: AlertService) -> RunResult:
        wl = self.watchlist
        restore = stop_on_signals(self._on_signal, second_signal_interrupts=True)
        inference = threading.Thread(target=self._infer, name="inference", daemon=True)
        delivery = threading.Thread(target=self._deliver, name="alerts", daemon=True)
        try:
            service.status(
                model_id=self.model_id, watchlist_id=wl.list_id, watchlist_version=wl.version
            )
            service.watchlist_changed(
                watchlist_id=wl.list_id, version=wl.version, change="loaded", entries=len(wl)
            )
            if self.options.publish:
                service.start()
            log.info(
                "watching %s with watchlist %s v%d (%d entries, threshold %.4f); detection: %s",
                self.options.source.name,
                wl.list_id,
                wl.version,
                len(wl),
                wl.threshold,
                self.processor.tiling,
            )
            self._started = time.monotonic()
            delivery.start()
            inference.start()
            self.capture.start()
            self._notifier.ready(f"watching {self.options.source.name}")
            self._supervise(inference)
        finally:
            self._notifier.stopping()
            self._shutdown(inference, delivery, service)
            self._write_run_metrics()
            restore()
        return self._result()

    def _supervise(self, inference: threading.Thread) -> None:
        """The main thread: status line, duration limit, watchlist reloads, until the end."""
        next_status = time.monotonic() + STATUS_EVERY_S
        next_log = time.monotonic() + self.config.run.status_log_s
        next_poll = time.monotonic() + WATCHLIST_POLL_S
        next_metrics = time.monotonic() + RUN_METRICS_EVERY_S
        last = (time.monotonic(), 0)
        progress = (time.monotonic(), 0)  # when inference last took a frame
        while inference.is_alive():
            if self._stop.wait(0.2):
                return
            now = time.monotonic()
            if self.processor.frames != progress[1]:
                progress = (now, self.processor.frames)
            # systemd's watchdog is fed while inference keeps up: idle (no frame waiting, e.g. a
            # camera reconnecting) or taking frames. Inference stuck with frames waiting starves it
            # and systemd restarts the service.
            if not len(self.frames) or now - progress[0] < WATCHDOG_STALL_S:
                self._notifier.watchdog()
            limit = self.options.duration_s
            if limit is not None and now - self._started >= limit:
                log.info("stopping after %.0f s (--duration)", limit)
                self._stop.set()
                return
            if now >= next_status:
                fps = (self.processor.frames - last[1]) / max(now - last[0], 1e-6)
                last = (now, self.processor.frames)
                self._fps_now = fps
                next_status = now + STATUS_EVERY_S
                line = self.status_text(fps)
                self._notifier.status(line)
                if self.options.status_line and self.err.isatty():
                    self._draw_status(line)
                elif self.config.run.status_log_s and now >= next_log:
                    next_log = now + self.config.run.status_log_s
                    log.info("%s", line)
            if now >= next_metrics:
                next_metrics = now + RUN_METRICS_EVERY_S
                self._write_run_metrics()
            if self.options.reload_watchlist is not None and now >= next_poll:
                next_poll = now + WATCHLIST_POLL_S
                self._maybe_reload()

    def _maybe_reload(self) -> None:
        assert self.options.reload_watchlist is not None
        try:
            fresh = self.options.reload_watchlist()
        except EdgeError as exc:
            log.error("keeping watchlist %s: %s", self.watchlist.list_id, exc)
            return
        if fresh is None:
            return
        self.watchlist = fresh
        self.processor.watchlist = fresh
        if self._service is not None:
            self._service.status(
                model_id=self.model_id, watchlist_id=fresh.list_id, watchlist_version=fresh.version
            )
            self._service.watchlist_changed(
                watchlist_id=fresh.list_id,
                version=fresh.version,
                change="loaded",
                entries=len(fresh),
            )
        log.info(
            "switched to watchlist %s v%d (%d entries)", fresh.list_id, fresh.version, len(fresh)
        )

    def _shutdown(
        self, inference: threading.Thread, delivery: threading.Thread, service: AlertService
    ) -> None:
        aborting = self._stop.is_set()
        self.capture.stop()
        if aborting:
            self.frames.close(discard=True)
        if inference.ident is not None:
            inference.join()
        self._hits.put(_END)
        if delivery.ident is not None:
            delivery.join()
        if not self.capture.join(CAPTURE_JOIN_S):
            self.frames.close(discard=True)
            log.warning("capture thread still blocked in a read; leaving it behind")
        if self._annotator is not None:
            self._annotator.close()
        service.publisher.stop()  # drains what it can; the rest waits in the outbox
        self._count_waiting(service)
        service.stop()
        if self._status_drawn:
            with self._print_lock:
                self.err.write("\n")
                self.err.flush()
                self._status_drawn = False

    def _count_waiting(self, service: AlertService) -> None:
        """What is still in the outbox once the publisher stopped: this run's alerts (and how
        far each got: ``waiting_why``), and all."""
        outbox, publisher = service.outbox, service.publisher
        try:
            total = outbox.stats().total
            mine = [r.alert_id for r in self.alerts if outbox.contains(r.alert_id)]
        except EdgeError as exc:
            log.error("cannot count the alerts left in the outbox: %s", exc)
            return
        self._outbox_left = {
            "waiting_in_outbox": len(mine),
            "outbox_total": total,
            "outbox": str(outbox.path),
            "waiting_why": (
                publisher.delivery_of(mine)
                if self.options.publish
                else {"not_published": len(mine)}
            ),
            "broker_error": None if publisher.connections else publisher.last_error,
        }

    def _on_signal(self, name: str) -> None:
        self._signal = name
        self._stop.set()

    # --- inference thread ------------------------------------------------------------------

    def _infer(self) -> None:
        try:
            while (frame := self.frames.get()) is not None:
                picked = time.monotonic()
                if self._first_frame_at is None:
                    self._first_frame_at = frame.read_at
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
            self._finished_at = time.monotonic()

    # --- alert thread ----------------------------------------------------------------------

    def _deliver(self) -> None:
        while (item := self._hits.get()) is not _END:
            assert isinstance(item, Hit)
            try:
                self._commit(item)
            except EdgeError as exc:
                self.alert_failures += 1
                log.error(
                    "alert for %s (track %d, frame %d) not stored: %s",
                    item.label,
                    item.track_id,
                    item.frame_index,
                    exc,
                )
            except Exception:
                self.alert_failures += 1
                log.exception("alert for track %d not stored", item.track_id)

    def _commit(self, hit: Hit) -> None:
        assert self._service is not None
        started = time.perf_counter()
        watchlist = WatchlistRef(id=self.watchlist.list_id, version=str(self.watchlist.version))
        alert = self._service.hit(
            hit, watchlist=watchlist, model_id=self.model_id, test=self.options.test_alerts
        )
        alert_id = alert.alert_id
        with self._alert_tracks_lock:
            self._alert_tracks[alert_id] = (hit.track_id, hit.entry_id)
            while len(self._alert_tracks) > ALERTS_REMEMBERED:
                self._alert_tracks.popitem(last=False)
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

    def on_review(self, review: Review) -> None:
        """A dispatch decision (publisher thread): a rejected match is not alerted again for
        the same track."""
        if review.decision != "reject":
            return
        with self._alert_tracks_lock:
            known = self._alert_tracks.get(review.alert_id)
        if known is None:
            log.info("review: alert %s rejected (not one of this run's alerts)", review.alert_id)
            return
        track_id, entry_id = known
        self.processor.decider.reject(track_id, entry_id)
        log.info(
            "review: alert %s rejected by %s: track %d will not alert for entry %d again",
            review.alert_id,
            review.by or "dispatch",
            track_id,
            entry_id,
        )

    # --- reporting -------------------------------------------------------------------------

    def _print(self, line: str) -> None:
        with self._print_lock:
            if self._status_drawn:
                self.err.write("\r\033[K")
                self.err.flush()
                self._status_drawn = False
            self.out.write(line + "\n")
            self.out.flush()

    def _draw_status(self, line: str) -> None:
        with self._print_lock:
            self.err.write("\r" + line + "\033[K")
            self.err.flush()
            self._status_drawn = True

    def status_text(self, fps: float) -> str:
        return (
            f"{fps:5.1f} fps | frame {self.capture.frames_read} | faces "
            f"{self.processor.last_faces} | tracks {self.processor.active_tracks} | dropped "
            f"{self.frames.dropped} | alerts {len(self.alerts)}"
        )

    def elapsed_s(self) -> float:
        start = self._first_frame_at or self._started
        end = self._finished_at or time.monotonic()
        return max(end - start, 1e-6)

    def metrics(self) -> dict[str, Any]:
        processor, capture = self.processor, self.capture
        elapsed = self.elapsed_s()
        outages = capture.outages()
        # A live source's outages are not processing time: fps is over the time frames flowed.
        frames_s = max(elapsed - outages.total_s, 1e-6)
        return {
            "source": self.options.source.name,
            "elapsed_s": round(elapsed, 2),
            "frames_s": round(frames_s, 2),
            "fps": round(processor.frames / frames_s, 1),
            "frames": {
                "read": capture.frames_read,
                "processed": processor.frames,
                "dropped": self.frames.dropped,
                "skipped": capture.frames_skipped,
                "corrupt": capture.frames_corrupt,
                "discarded_at_stop": self.frames.discarded,
            },
            "reconnects": capture.reconnects,
            "outages": {
                "count": outages.count,
                "total_s": round(outages.total_s, 2),
                "longest_s": round(outages.longest_s, 2),
                "ongoing": outages.ongoing,
            },
            "detection": {"tiling": processor.tiling, **asdict(processor.scan)},
            "faces": {
                "detected": processor.faces,
                "assessed": processor.assessed,
                "embedded": processor.embedded,
            },
            "tracks": {
                "started": processor.tracker.created,
                "active": processor.active_tracks,
                "split": processor.tracker.splits,
                "reidentified": processor.tracker.reidentified,
                "scene_cuts": processor.scene_cuts,
            },
            "alerts": {
                "raised": len(self.alerts),
                "suppressed_by_cooldown": processor.decider.suppressed,
                "suppressed_by_review": processor.decider.rejected,
                "failed": self.alert_failures,
                **(self._outbox_left or {}),
            },
            "latency_ms": self.stages.snapshot(),
            "peak_rss_mb": peak_rss_mb(),
        }

    def heartbeat_stats(self) -> Mapping[str, Any]:
        """For the MQTT heartbeat (runs on the publisher's thread: cheap). Once inference has
        ended (the heartbeat at shutdown) there is no current frame rate: ``fps`` is the run's."""
        metrics = self.metrics()
        metrics["running"] = self._finished_at is None
        if self._finished_at is None:
            metrics["fps_now"] = round(self._fps_now, 1)
        metrics["queues"] = {"frames": len(self.frames), "alerts": self._hits.qsize()}
        return {"pipeline": metrics}

    def _write_run_metrics(self) -> None:
        """``<state_dir>/run-metrics.json``: the heartbeat's numbers, for ``edge sync``'s local
        API without a broker. A failure is logged once and never stops the run."""
        stats = self.heartbeat_stats()["pipeline"]
        try:
            write_run_metrics(self._run_metrics_path, stats, running=bool(stats["running"]))
        except OSError as exc:
            if not self._run_metrics_failed:
                self._run_metrics_failed = True
                log.warning("cannot write %s: %s", self._run_metrics_path, exc.strerror or exc)

    def _result(self) -> RunResult:
        if self._failure is not None:
            raise EdgeError(f"the run stopped on an internal error: {self._failure!r}")
        if self.capture.state == "failed" and self.capture.error is not None:
            raise EdgeError(f"capture from {self.options.source.name} failed: {self.capture.error}")
        if self._signal is not None:
            reason, code = (
                f"stopped by {self._signal}",
                (EXIT_INTERRUPTED if self._signal == "SIGINT" else EXIT_OK),
            )
        elif self.capture.state == "lost":
            reason, code = self.capture.describe_end(), EXIT_SOURCE_LOST
        elif self._stop.is_set():
            reason, code = "duration reached (--duration)", EXIT_OK
        else:
            reason, code = self.capture.describe_end(), EXIT_OK
        metrics = self.metrics()
        metrics["end"] = reason
        metrics["alert_list"] = [asdict(a) for a in self.alerts]
        result = RunResult(reason, code, list(self.alerts), metrics)
        self._print_summary(result)
        if self.options.metrics_json is not None:
            try:
                self.options.metrics_json.write_text(
                    json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8"
                )
            except OSError as exc:
                raise EdgeError(
                    f"cannot write {self.options.metrics_json}: {exc.strerror}"
                ) from exc
        return result

    def _print_summary(self, result: RunResult) -> None:
        m = result.metrics
        frames, faces, tracks, alerts = m["frames"], m["faces"], m["tracks"], m["alerts"]
        stages = ", ".join(
            f"{name} {s['mean_ms']:.1f}/{s['p90_ms']:.1f}"
            for name, s in m["latency_ms"].items()
            if s["count"]
        )
        lines = [
            f"run ended: {result.reason}, {m['elapsed_s']:.1f} s at {utc_rfc3339()}",
            f"  frames: read {frames['read']}, processed {frames['processed']} "
            f"({m['fps']:.1f} fps{_outage_text(m)}), dropped {frames['dropped']}, skipped "
            f"{frames['skipped']}, corrupt {frames['corrupt']}; reconnects {m['reconnects']}",
            f"  faces: detected {faces['detected']}, assessed {faces['assessed']}, embedded "
            f"{faces['embedded']}; tracks {tracks['started']}",
            f"  detection: {m['detection']['tiling']}; tiles {m['detection']['tiles']}, crops "
            f"{m['detection']['crops']}, re-checks {m['detection']['rechecks']}, rejected by the "
            f"mesh check {m['detection']['rejected_by_mesh']}",
            f"  alerts: {alerts['raised']} raised (suppressed by cooldown "
            f"{alerts['suppressed_by_cooldown']}, failed {alerts['failed']})"
            + _waiting_text(alerts),
            f"  latency ms (mean/p90): {stages}",
            f"  peak memory {m['peak_rss_mb']:.0f} MB",
        ]
        self._print("\n".join(lines))


def _outage_text(metrics: Mapping[str, Any]) -> str:
    """' over the 24.1 s with frames; 2 outages, 40.5 s in all, longest 30.2 s': a live source's
    fps leaves its outages out, and says so."""
    outages = metrics["outages"]
    count = outages["count"]
    if not count:
        return ""
    return (
        f" over the {metrics['frames_s']:.1f} s with frames; {count} outage"
        f"{'s' if count > 1 else ''}, {outages['total_s']:.1f} s in all, longest "
        f"{outages['longest_s']:.1f} s"
    )


def _waiting_text(alerts: Mapping[str, Any]) -> str:
    """'; 1 waiting in the outbox (PATH): sent, no dispatch ack yet (...); ...': alerts not
    delivered yet must not hide behind 'failed 0', and the reason says what happens to them."""
    if "waiting_in_outbox" not in alerts:
        return ""
    mine, total = alerts["waiting_in_outbox"], alerts["outbox_total"]
    more = f", {total - mine} more from before" if total > mine else ""
    text = f"; {mine} waiting in the outbox{more} ({alerts['outbox']})"
    why: Mapping[str, int] = alerts.get("waiting_why") or {}
    if not mine or not why:
        return text
    if "not_published" in why:
        them = "it" if mine == 1 else "them"
        return f"{text}: not sent, this run did not publish; `edge outbox flush` sends {them}"
    no_broker = alerts.get("broker_error")
    reasons = {
        "unsent": f"never sent, no broker ({no_broker})" if no_broker else "not sent yet",
        "sent": "sent, the broker did not confirm it",
        "at_broker": "sent, no dispatch ack yet (alerts.require_dispatch_ack)",
        "no_subscriber": "sent, nobody subscribed (is `edge dispatch serve` running?)",
        "refused": "refused by the broker (the log says why)",
    }
    parts = [
        reason if len(why) == 1 else f"{why[state]} {reason}"
        for state, reason in reasons.items()
        if why.get(state)
    ]
    return f"{text}: {' and '.join(parts)}; sent again on the next run or by `edge outbox flush`"


def _lossy(spec: SourceSpec, config: Config) -> bool:
    """Live sources, and files played in real time, drop frames rather than wait."""
    return spec.live or (spec.kind == "file" and config.capture.file_pacing == "realtime")
