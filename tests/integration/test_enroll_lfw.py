"""Enrollment through the real pipeline on real LFW photos."""

from __future__ import annotations

from pathlib import Path

import pytest
from recognition_helpers import LFW_DIR as LFW

from edge.pipeline.images import decode_image
from edge.watchlist.enroll import enroll, scan_photos


@pytest.mark.skipif(not (LFW / "images").is_dir(), reason=f"LFW not found at {LFW}")
def test_real_pipeline_enrolls_lfw_photos(tmp_path: Path) -> None:
    import shutil

    import cv2
    import numpy as np

    from edge.config import Config
    from edge.pipeline.analyzer import FaceAnalyzer

    root = tmp_path / "photos"
    for name in ("Colin_Powell", "Tony_Blair"):
        for n in (1, 2):
            src = LFW / "images" / name / f"{name}_{n:04d}.jpg"
            (root / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / name / src.name)
    cv2.imwrite(str(root / "Tony_Blair" / "blank.png"), np.full((200, 200, 3), 90, np.uint8))
    analyzer = FaceAnalyzer.from_config(Config())
    specs, report = enroll(scan_photos(root), analyzer, "i8", decode_image)
    assert [s.label for s in specs] == ["Colin_Powell", "Tony_Blair"]
    assert [len(s.templates) for s in specs] == [2, 2]
    assert [(Path(p.path).name, p.reason) for p in report.rejected] == [
        ("blank.png", "no face found")
    ]
