"""What ``edge run`` tells: the TTY status line and the ALERT lines (:class:`Console`), the
run's numbers for the heartbeat, ``<state_dir>/run-metrics.json`` and ``--metrics-json``, and the
end-of-run summary (:class:`RunReporter`)."""

from __future__ import annotations

import json
import logging
import queue
import resource
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edge.alerts.service import AlertService
from edge.clock import utc_rfc3339
from edge.errors import EdgeError
from edge.pipeline.metrics import write_run_metrics
from edge.services.run_state import AlertRecord, RunOptions, RunParts, RunProgress

# The run's log lines keep the one logger name they had before the Runner was split.
log = logging.getLogger("edge.services.recognizer")


@dataclass
class RunResult:
    reason: str
    exit_code: int
    alerts: list[AlertRecord] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Console:
    """Lines on stdout (alerts, the summary) and the status line redrawn in place on stderr:
    a line printed while the status line is drawn first clears it."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self._lock = threading.Lock()
        self._status_drawn = False

    def print(self, line: str) -> None:
        with self._lock:
            if self._status_drawn:
                self.err.write("\r\033[K")
                self.err.flush()
                self._status_drawn = False
            self.out.write(line + "\n")
            self.out.flush()

    def draw_status(self, line: str) -> None:
        with self._lock:
            self.err.write("\r" + line + "\033[K")
            self.err.flush()
            self._status_drawn = True

    def end_status(self) -> None:
        """Leave the status line's last state on screen, and the cursor below it."""
        if self._status_drawn:
            with self._lock:
                self.err.write("\n")
                self.err.flush()
                self._status_drawn = False


class RunReporter:
    """The run's numbers, from its parts and progress (read from any thread: cheap)."""

    def __init__(
        self,
        options: RunOptions,
        parts: RunParts,
        progress: RunProgress,
        hits: queue.Queue[object],
        run_metrics_path: Path,
        console: Console,
    ) -> None:
        self.options = options
        self.parts = parts
        self.progress = progress
        self._hits = hits
        self._run_metrics_path = run_metrics_path
        self._run_metrics_failed = False
        self.console = console

    def status_text(self, fps: float) -> str:
        capture, processor = self.parts.capture, self.parts.processor
        return (
            f"{fps:5.1f} fps | frame {capture.frames_read} | faces "
            f"{processor.last_faces} | tracks {processor.active_tracks} | dropped "
            f"{self.parts.frames.dropped} | alerts {len(self.progress.alerts)}"
        )

    def metrics(self) -> dict[str, Any]:
        processor, capture, frames = self.parts.processor, self.parts.capture, self.parts.frames
        elapsed = self.progress.elapsed_s()
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
                "dropped": frames.dropped,
                "skipped": capture.frames_skipped,
                "corrupt": capture.frames_corrupt,
                "discarded_at_stop": frames.discarded,
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
                "raised": len(self.progress.alerts),
                "suppressed_by_cooldown": processor.decider.suppressed,
                "suppressed_by_review": processor.decider.rejected,
                "failed": self.progress.alert_failures,
                **(self.progress.outbox_left or {}),
            },
            "latency_ms": self.parts.stages.snapshot(),
            "peak_rss_mb": peak_rss_mb(),
        }

    def heartbeat_stats(self) -> Mapping[str, Any]:
        """For the MQTT heartbeat (runs on the publisher's thread: cheap). Once inference has
        ended (the heartbeat at shutdown) there is no current frame rate: ``fps`` is the run's."""
        metrics = self.metrics()
        finished_at = self.progress.finished_at
        metrics["running"] = finished_at is None
        if finished_at is None:
            metrics["fps_now"] = round(self.progress.fps_now, 1)
        metrics["queues"] = {"frames": len(self.parts.frames), "alerts": self._hits.qsize()}
        return {"pipeline": metrics}

    def write_run_metrics(self) -> None:
        """``<state_dir>/run-metrics.json``: the heartbeat's numbers, for ``edge sync``'s local
        API without a broker. A failure is logged once and never stops the run."""
        stats = self.heartbeat_stats()["pipeline"]
        try:
            write_run_metrics(self._run_metrics_path, stats, running=bool(stats["running"]))
        except OSError as exc:
            if not self._run_metrics_failed:
                self._run_metrics_failed = True
                log.warning("cannot write %s: %s", self._run_metrics_path, exc.strerror or exc)

    def count_waiting(self, service: AlertService) -> None:
        """What is still in the outbox once the publisher stopped: this run's alerts (and how
        far each got: ``waiting_why``), and all."""
        outbox, publisher = service.outbox, service.publisher
        try:
            total = outbox.stats().total
            mine = [r.alert_id for r in self.progress.alerts if outbox.contains(r.alert_id)]
        except EdgeError as exc:
            log.error("cannot count the alerts left in the outbox: %s", exc)
            return
        self.progress.outbox_left = {
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

    def finish(self, reason: str, exit_code: int) -> RunResult:
        """The run's result: the summary printed, ``--metrics-json`` written."""
        metrics = self.metrics()
        metrics["end"] = reason
        metrics["alert_list"] = [asdict(a) for a in self.progress.alerts]
        result = RunResult(reason, exit_code, list(self.progress.alerts), metrics)
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
        self.console.print("\n".join(lines))


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
