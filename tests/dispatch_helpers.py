"""Shared helpers for the dispatch tests: a store with accounts, a logged-in client, alerts."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from alerts_helpers import sample_alert
from fastapi.testclient import TestClient
from recognition_helpers import analyzer

from edge.alerts.model import Alert
from edge.config.dispatch import DispatchConfig
from edge.dispatch.auth import Accounts
from edge.dispatch.deps import Deps
from edge.dispatch.received import received
from edge.dispatch.store import Store
from edge.dispatch.web import create_app
from edge.pipeline.context import encode_context

PASSWORD = "correct horse battery"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def make_deps(store: Store, **config: Any) -> Deps:
    accounts = Accounts(store, DispatchConfig.model_validate(config))
    for name, role in (("olga", "operator"), ("sam", "supervisor"), ("ada", "auditor")):
        accounts.add_user(name, role, PASSWORD, by="test")
    return Deps(store=store, accounts=accounts, config=accounts.config)


def sqlite_store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'dispatch.db'}")


def store_alerts(store: Store, count: int, **overrides: Any) -> list[str]:
    items = [received(sample_alert(n, crop_jpeg=JPEG, **overrides).encode()) for n in range(count)]
    store.ingest(items)
    return [i.alert_id for i in items]


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token (from a page)."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    home = client.get("/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert token is not None
    return token.group(1)


def client_for(deps: Deps) -> TestClient:
    return TestClient(create_app(deps), base_url="http://testserver")


# --- real pictures: an enrolment photo of two people, and a scene a device saw -------------------

SAMPLES = Path(__file__).resolve().parent.parent / "edge" / "samples"
ENROLLED = "Colin Powell"  # the larger face of the two-person photo: `--pick largest` takes him
OTHER = "Tony Blair"


def two_people_photo(path: Path) -> Path:
    """A real photo of two people (LFW samples side by side): Tony Blair small on the left,
    Colin Powell large on the right. Written as a JPEG at ``path``."""
    powell = cv2.imread(str(SAMPLES / "Colin_Powell_0001.jpg"))
    blair = cv2.imread(str(SAMPLES / "Tony_Blair_0001.jpg"))
    canvas = np.full((300, 560, 3), 96, np.uint8)
    canvas[130:270, 30:170] = cv2.resize(blair, (140, 140), interpolation=cv2.INTER_AREA)
    canvas[25:275, 290:540] = powell
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


POWELL_IN_SCENE = (432, 149, 533, 251)  # his face in scene_frame(), found by the detector
BLAIR_IN_SCENE = (85, 165, 185, 285)


def scene_frame() -> Any:
    """A 640x360 scene (BGR) as a device sends it: Colin Powell (another photo of him) on the
    right, a second person on the left; made by the device's own code
    (:func:`edge.pipeline.context.encode_context`): every face but Powell's pixelated and the
    scene but him blurred."""
    powell = cv2.imread(str(SAMPLES / "Colin_Powell_0002.jpg"))
    blair = cv2.imread(str(SAMPLES / "Tony_Blair_0001.jpg"))[:, 70:250]  # him alone
    ramp = np.linspace(60, 150, 640, dtype=np.uint8)
    scene = np.dstack([np.tile(ramp, (360, 1))] * 3).copy()
    scene[90:340, 60:240] = blair
    scene[70:320, 360:610] = powell
    context = encode_context(scene, POWELL_IN_SCENE, [BLAIR_IN_SCENE], 640, "blurred")
    assert context is not None
    return cv2.imdecode(np.frombuffer(context.jpeg, np.uint8), cv2.IMREAD_COLOR)


def with_context(alert: Alert, jpeg: bytes, box: Any) -> Alert:
    """``alert`` with a context frame (alert schema v1 ``context``) made of this JPEG, the
    matched face at ``box`` in its pixels, as a device sends it."""
    height, width = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    context = {
        "media_type": "image/jpeg",
        "data": base64.b64encode(jpeg).decode("ascii"),
        "width": width,
        "height": height,
        "box": [int(v) for v in box],
    }
    return Alert.model_validate({**alert.document(), "context": context})


def embedding_of(image: Any) -> Any:
    """(Real model.) The embedding of the one clear face in ``image`` (BGR)."""
    faces = [f for f in analyzer().analyze(image) if f.embedding is not None]
    assert len(faces) == 1, f"expected one face, found {len(faces)}"
    return faces[0].embedding


def people_embeddings() -> dict[str, Any]:
    return {
        "Colin Powell": embedding_of(cv2.imread(str(SAMPLES / "Colin_Powell_0001.jpg"))),
        OTHER: embedding_of(cv2.imread(str(SAMPLES / "Tony_Blair_0001.jpg"))[:, 70:250]),
    }


def assert_is_the_enrolled_person(jpeg: bytes) -> None:
    """The face in ``jpeg`` is Colin Powell's, not the other person's in his photo."""
    found = embedding_of(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    scores = {name: float(found @ e) for name, e in people_embeddings().items()}
    assert scores[ENROLLED] > 0.8 and scores[OTHER] < 0.45, scores
