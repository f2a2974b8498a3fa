"""Video capture: source parsing, the frame queue, files, folders, and streams that fail."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from deadlines import SHOULD_HAPPEN_S
from video_helpers import DEMO_CLIP, MjpegCamera, Plan, damaged_clip

from edge.config.capture import CaptureConfig
from edge.errors import CaptureError, SourceError
from edge.pipeline.capture import STILL_STEP_S, Capture
from edge.pipeline.handoff import Frame, FrameQueue
from edge.pipeline.source import SourceSpec, parse_source, redact_url

CLIP_FRAMES = 275


def frame(index: int) -> Frame:
    return Frame(index, np.zeros((2, 2, 3), np.uint8), index / 30, datetime.now(UTC), 0.0)


def drain(queue: FrameQueue) -> list[Frame]:
    out = []
    while (f := queue.get()) is not None:
        out.append(f)
    return out


def capture(spec: SourceSpec, queue: FrameQueue, **settings: object) -> Capture:
    return Capture(spec, CaptureConfig.model_validate(settings), queue)


# --- sources ------------------------------------------------------------------------------------


def test_parse_source_kinds(tmp_path: Path) -> None:
    assert parse_source("0") == SourceSpec("camera", "0")
    assert parse_source(str(DEMO_CLIP)) == SourceSpec("file", str(DEMO_CLIP))
    assert parse_source(f"file://{DEMO_CLIP}") == SourceSpec("file", str(DEMO_CLIP))
    assert parse_source(str(tmp_path)) == SourceSpec("folder", str(tmp_path))
    stream = parse_source("rtsp://admin:hunter2@10.0.0.5:554/stream1")
    assert stream.kind == "stream" and stream.live
    assert "hunter2" not in stream.name and stream.name == "rtsp://***@10.0.0.5:554/stream1"
    assert redact_url("http://cam.local/x.mjpg") == "http://cam.local/x.mjpg"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("/dev/video99", "no such camera"),
        ("ftp://user:pw@host/x", "unsupported stream scheme 'ftp'"),
        ("no-such-clip.mp4", "no such file, folder or camera"),
    ],
)
def test_bad_sources_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as caught:
        parse_source(text)
    assert "pw" not in str(caught.value)


def test_a_file_that_is_not_a_video_fails_on_open(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    cap = capture(parse_source(str(bogus)), FrameQueue(2, lossy=False))
    with pytest.raises(CaptureError, match="cannot open video"):
        cap.open()


# --- the queue ----------------------------------------------------------------------------------


def test_a_lossy_queue_never_blocks_and_drops_the_oldest() -> None:
    queue = FrameQueue(2, lossy=True)
    for i in range(5):
        assert queue.put(frame(i))
    assert queue.dropped == 3
    queue.close()
    assert [f.index for f in drain(queue)] == [3, 4]


def test_a_lossless_queue_makes_the_reader_wait() -> None:
    queue = FrameQueue(1, lossy=False)
    queue.put(frame(0))
    done = threading.Event()

    def producer() -> None:
        queue.put(frame(1))
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    assert not done.wait(0.2)  # full: the producer waits
    assert queue.get() is not None
    assert done.wait(SHOULD_HAPPEN_S)
    queue.close(discard=True)
    assert queue.get() is None and queue.discarded == 1 and queue.dropped == 0
    assert queue.put(frame(2)) is False  # closed


# --- files and folders --------------------------------------------------------------------------


def test_a_file_is_read_completely_with_media_timestamps() -> None:
    queue = FrameQueue(4, lossy=False)
    cap = capture(parse_source(str(DEMO_CLIP)), queue)
    cap.open()
    assert cap.fps == pytest.approx(29.97, abs=0.01)
    cap.start()
    frames = drain(queue)
    assert cap.join(SHOULD_HAPPEN_S) and cap.state == "ended"
    assert [f.index for f in frames] == list(range(CLIP_FRAMES))
    assert frames[0].t == 0.0 and frames[-1].t == pytest.approx(274 / 29.97, abs=0.01)
    assert frames[0].image.shape == (360, 640, 3)
    assert cap.frames_read == CLIP_FRAMES and queue.dropped == 0


def test_a_damaged_file_is_read_past_the_damage_to_its_end(tmp_path: Path) -> None:
    clip = damaged_clip(tmp_path / "zeroed.mp4", "zeroed")
    queue = FrameQueue(4, lossy=False)
    cap = capture(parse_source(str(clip)), queue)
    cap.open()
    cap.start()
    frames = drain(queue)
    assert (
        cap.join(SHOULD_HAPPEN_S) and cap.state == "ended" and cap.describe_end() == "end of source"
    )
    # OpenCV alone decodes 260 of the 275 frames; stopping at the first failed read gave 136.
    assert len(frames) >= 250 and cap.frames_read == len(frames)
    assert cap.frames_corrupt == CLIP_FRAMES - len(frames) > 0
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[-1].t > 8.5  # media time reaches the end of the 9 s clip


def test_a_file_that_yields_no_frame_at_all_is_an_error(tmp_path: Path) -> None:
    clip = damaged_clip(tmp_path / "scrambled.mp4", "scrambled")
    queue = FrameQueue(4, lossy=False)
    cap = capture(parse_source(str(clip)), queue)
    cap.open()  # the index is intact: it opens
    cap.start()
    assert drain(queue) == []
    assert cap.join(SHOULD_HAPPEN_S) and cap.state == "failed"
    assert isinstance(cap.error, CaptureError) and "no frame" in str(cap.error)
    assert cap.frames_corrupt == CLIP_FRAMES


def test_frame_rate_cap_skips_at_the_source() -> None:
    queue = FrameQueue(4, lossy=False)
    cap = capture(parse_source(str(DEMO_CLIP)), queue, max_fps=10)
    cap.open()
    cap.start()
    frames = drain(queue)
    assert len(frames) == pytest.approx(CLIP_FRAMES / 3, abs=2)
    assert all(b.t - a.t >= 0.099 for a, b in itertools.pairwise(frames))
    assert cap.frames_skipped == CLIP_FRAMES - len(frames)


def test_a_realtime_producer_is_never_held_up_by_a_slow_consumer() -> None:
    queue = FrameQueue(2, lossy=True)
    cap = capture(parse_source(str(DEMO_CLIP)), queue, file_pacing="realtime")
    cap.open()
    cap.start()
    taken = 0
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        if queue.get(timeout=0.5) is not None:
            taken += 1
            time.sleep(0.1)  # inference at 10 fps
    cap.stop()
    queue.close(discard=True)
    assert cap.join(SHOULD_HAPPEN_S)
    # The clip plays at ~30 fps regardless: about 30 frames read, about 10 taken, the rest dropped.
    assert cap.frames_read >= 20 and taken <= 12
    assert queue.dropped >= cap.frames_read - taken - 2 - queue.discarded


def test_a_folder_of_stills_skips_unreadable_files(tmp_path: Path) -> None:
    from edge.samples import OTHER_PERSON, SAME_PERSON

    for photo in (*SAME_PERSON, OTHER_PERSON):
        (tmp_path / photo.name).write_bytes(photo.read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "notes.txt").write_text("ignored")
    queue = FrameQueue(2, lossy=False)
    cap = capture(parse_source(str(tmp_path)), queue)
    cap.open()
    cap.start()
    frames = drain(queue)
    assert len(frames) == 3 and [f.t for f in frames] == [0.0, STILL_STEP_S, 2 * STILL_STEP_S]
    assert cap.frames_corrupt == 1  # broken.jpg


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    cap = capture(parse_source(str(tmp_path)), FrameQueue(2, lossy=False))
    with pytest.raises(SourceError, match="holds no image"):
        cap.open()


# --- streams ------------------------------------------------------------------------------------

FAST_RECONNECT = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "max_reconnects": 2}


def test_a_cut_stream_is_reconnected_until_the_camera_is_gone() -> None:
    with MjpegCamera([Plan(0, 60), Plan(60, 100)]) as camera:
        queue = FrameQueue(1000, lossy=True)
        cap = capture(parse_source(camera.url), queue, **FAST_RECONNECT)
        cap.open()
        cap.start()
        frames = drain(queue)
        assert cap.join(SHOULD_HAPPEN_S)
    assert cap.state == "lost" and "secret" not in cap.describe_end()
    assert len(frames) == 100 and [f.index for f in frames] == list(range(100))
    assert camera.connections == 4  # two streams, then two refused reconnects
    assert cap.reconnects == 3


def test_a_stalled_stream_times_out_and_is_reconnected() -> None:
    with MjpegCamera([Plan(0, 20, stall_s=20.0), Plan(20, 40)]) as camera:
        queue = FrameQueue(1000, lossy=True)
        cap = capture(parse_source(camera.url), queue, read_timeout_s=1.0, **FAST_RECONNECT)
        cap.open()
        started = time.monotonic()
        cap.start()
        frames = drain(queue)
        assert cap.join(SHOULD_HAPPEN_S)
    assert len(frames) == 40 and cap.state == "lost"
    assert time.monotonic() - started < 15.0  # the 20 s stall did not hold it (1 s read timeout)


def test_the_backoff_stays_at_its_cap_however_long_the_camera_is_away() -> None:
    # 2.0**n overflows past n = 1023: a camera away for a weekend must not crash the capture.
    cap = capture(parse_source("rtsp://127.0.0.1:1/x"), FrameQueue(2, lossy=True))
    assert cap._announce_retry(5000, CaptureError("away")) == cap.config.reconnect_max_s


def test_a_camera_that_is_down_at_start_is_waited_for() -> None:
    with MjpegCamera([]) as camera:  # refuses every connection
        queue = FrameQueue(2, lossy=True)
        cap = capture(parse_source(camera.url), queue, **FAST_RECONNECT)
        cap.open()  # does not raise: a live source is retried
        cap.start()
        assert drain(queue) == []
        assert cap.join(SHOULD_HAPPEN_S)
    assert cap.state == "lost" and cap.reconnects == 2
