"""Shared helpers for the dispatch tests: a store with accounts, a logged-in client, alerts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alerts_helpers import sample_alert
from fastapi.testclient import TestClient

from edge.alerts.schema import encode_alert
from edge.config.dispatch import DispatchConfig
from edge.dispatch.auth import Accounts
from edge.dispatch.store import Store, received
from edge.dispatch.web import Deps, create_app

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
    items = [
        received(encode_alert(sample_alert(n, crop_jpeg=JPEG, **overrides))) for n in range(count)
    ]
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
