"""The dispatch console and API on SQLite, through TestClient: login, roles, CSRF, reviews,
and every route refusing anonymous callers and surviving injection strings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dispatch_helpers import PASSWORD, client_for, login, make_deps, sqlite_store, store_alerts
from fastapi.routing import APIRoute

from edge.audit import audit_problem
from edge.dispatch.deps import Deps
from edge.dispatch.received import received


@pytest.fixture
def deps(tmp_path: Path) -> Deps:
    store = sqlite_store(tmp_path)
    deps = make_deps(store, login_max_failures=3)
    sent: list[dict[str, Any]] = []
    deps.send_review = sent.append
    deps.sent = sent  # type: ignore[attr-defined]
    return deps


def test_nothing_answers_without_login_or_token(deps: Deps) -> None:
    alert_id = store_alerts(deps.store, 1)[0]
    client = client_for(deps)
    from edge.dispatch import api, views

    routes = [*client.app.routes, *api.router.routes, *views.router.routes]  # type: ignore[attr-defined]
    checked = 0
    for route in routes:
        if not isinstance(route, APIRoute) or route.path in ("/login",):
            continue
        path = (
            route.path.replace("{alert_id}", alert_id)
            .replace("{device_id}", "cam-1")
            .replace("{list_id}", "wl-main")
            .replace("{entry_id}", "e0")
            .replace("{n}", "0")
        )
        for method in route.methods:
            response = client.request(method, path, follow_redirects=False)
            assert response.status_code in (401, 303), (method, path, response.status_code)
            if response.status_code == 303:
                assert response.headers["location"] == "/login"
            checked += 1
        wrong = client.get(
            path, headers={"Authorization": "Bearer edt_nope"}, follow_redirects=False
        )
        assert wrong.status_code in (401, 303, 405)
    assert checked >= 20
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/events").status_code == 401


def test_operator_reviews_with_csrf_and_the_device_is_sent_the_decision(deps: Deps) -> None:
    alert_id = store_alerts(deps.store, 2)[0]
    client = client_for(deps)
    csrf = login(client, "olga")
    assert client.cookies.get("edge_session")
    listing = client.get("/")
    assert alert_id in listing.text and "Person 0" in listing.text
    page = client.get(f"/alerts/{alert_id}")
    assert page.status_code == 200 and 'id="review-form"' in page.text
    assert "content-security-policy" in page.headers
    # No CSRF token: refused.
    missing = client.post(f"/alerts/{alert_id}/review", data={"decision": "reject", "note": "x"})
    assert missing.status_code == 403
    wrong = client.post(
        f"/alerts/{alert_id}/review",
        data={"decision": "reject", "note": "x", "csrf_token": "forged"},
    )
    assert wrong.status_code == 403
    assert deps.store.get_alert(alert_id)["state"] == "new"
    done = client.post(
        f"/alerts/{alert_id}/review",
        data={"decision": "reject", "note": "not him: taller", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert deps.store.get_alert(alert_id)["state"] == "rejected"
    (sent,) = deps.sent  # type: ignore[attr-defined]
    assert sent.decision == "reject" and sent.note == "not him: taller"
    assert sent.by_user == "olga" and sent.device_id == "cam-1"
    # A decided alert is the supervisor's now.
    again = client.post(
        f"/alerts/{alert_id}/review", data={"decision": "confirm", "csrf_token": csrf}
    )
    assert again.status_code == 403


def test_session_cookie_is_httponly_and_samesite(deps: Deps) -> None:
    client = client_for(deps)
    page = client.get("/login")
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    response = client.post(
        "/login",
        data={"username": "olga", "password": PASSWORD, "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    # The login form itself needs its CSRF token.
    client2 = client_for(deps)
    refused = client2.post("/login", data={"username": "olga", "password": PASSWORD})
    assert refused.status_code == 403


def test_roles(deps: Deps) -> None:
    alert_id = store_alerts(deps.store, 1)[0]
    operator = client_for(deps)
    csrf = login(operator, "olga")
    assert operator.get("/users").status_code == 403
    add = {"name": "mallory", "role": "supervisor", "password": PASSWORD, "csrf_token": csrf}
    assert operator.post("/users", data=add).status_code == 403
    assert operator.post("/api/users", json=add, headers={"X-CSRF-Token": csrf}).status_code == 403
    assert operator.get("/actions").status_code == 403

    auditor = client_for(deps)
    csrf_a = login(auditor, "ada")
    assert auditor.get("/actions").status_code == 200
    assert auditor.get(f"/alerts/{alert_id}").status_code == 200
    assert 'id="review-form"' not in auditor.get(f"/alerts/{alert_id}").text
    review = auditor.post(
        f"/alerts/{alert_id}/review", data={"decision": "confirm", "csrf_token": csrf_a}
    )
    assert review.status_code == 403
    assert (
        auditor.post(
            "/api/users", json={**add, "name": "eve"}, headers={"X-CSRF-Token": csrf_a}
        ).status_code
        == 403
    )

    supervisor = client_for(deps)
    csrf_s = login(supervisor, "sam")
    created = supervisor.post(
        "/api/users",
        json={"name": "new-op", "role": "operator", "password": PASSWORD},
        headers={"X-CSRF-Token": csrf_s},
    )
    assert created.status_code == 201, created.text
    assert {u["name"] for u in deps.accounts.users()} >= {"new-op"}
    assert deps.store.get_alert(alert_id)["state"] == "new"


def test_api_with_a_token(deps: Deps) -> None:
    ids = store_alerts(deps.store, 5)
    token = deps.accounts.create_token("olga", by="test")
    client = client_for(deps)
    headers = {"Authorization": f"Bearer {token}"}
    alerts = client.get("/api/alerts?limit=3", headers=headers).json()
    assert [a["alert_id"] for a in alerts] == ids[::-1][:3]
    first = alerts[0]
    assert {"alert_id", "device_id", "entry", "score", "event_time", "state"} <= set(first)
    assert first["state"] == "new" and first["entry"]["label"] == "Person 4"
    since = client.get(
        "/api/alerts", params={"since": "2999-01-01T00:00:00Z"}, headers=headers
    ).json()
    assert since == []
    # A token needs no CSRF (no cookie is involved).
    review = client.post(
        f"/api/alerts/{ids[0]}/review", json={"decision": "confirm", "note": "yes"}, headers=headers
    )
    assert review.status_code == 200 and review.json()["decision"] == "confirm"
    detail = client.get(f"/api/alerts/{ids[0]}", headers=headers).json()
    assert detail["state"] == "confirmed" and detail["reviews"][0]["by_user"] == "olga"
    assert client.get("/api/devices", headers=headers).status_code == 200
    assert client.get("/api/watchlists", headers=headers).status_code == 200
    spec = client.get("/openapi.json", headers=headers).json()
    assert "/api/alerts" in spec["paths"] and "/api/alerts/{alert_id}/review" in spec["paths"]


def test_login_is_rate_limited(deps: Deps) -> None:
    client = client_for(deps)
    for _ in range(3):
        page = client.get("/login")
        import re

        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        bad = client.post(
            "/login", data={"username": "olga", "password": "wrong-password", "csrf_token": csrf}
        )
        assert bad.status_code == 401
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    limited = client.post(
        "/login", data={"username": "olga", "password": PASSWORD, "csrf_token": csrf}
    )
    assert limited.status_code == 429


INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE alerts; --",
    '" onmouseover="alert(1)',
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%00",
    "\\x00",
    "1 UNION SELECT password_hash FROM users",
    "${7*7}{{7*7}}",
    "-1",
    "99999999999999999999999",
    "☃" * 300,
]


def test_every_query_parameter_survives_injection_strings(deps: Deps) -> None:
    store_alerts(deps.store, 3)
    token = deps.accounts.create_token("sam", by="test")
    client = client_for(deps)
    headers = {"Authorization": f"Bearer {token}"}
    spec = client.get("/openapi.json", headers=headers).json()
    tried = 0
    for path, methods in spec["paths"].items():
        if "get" not in methods or "{" in path:
            continue
        for parameter in methods["get"].get("parameters", []):
            if parameter["in"] != "query":
                continue
            for value in INJECTIONS:
                response = client.get(path, params={parameter["name"]: value}, headers=headers)
                assert response.status_code in (200, 400, 422), (path, parameter, value)
                assert "<script>" not in response.text or response.status_code == 422
                tried += 1
    assert tried > 50
    # Pages too, with their query parameters.
    csrf = login(client, "sam")
    assert csrf
    for page, names in (("/", ("before", "device", "state")), ("/actions", ("before",))):
        for name in names:
            for value in INJECTIONS:
                response = client.get(page, params={name: value})
                assert response.status_code in (200, 400, 422), (page, name, value)
                if response.headers["content-type"].startswith("text/html"):
                    assert "<script>alert(1)</script>" not in response.text
    assert deps.store.count_alerts() == 3  # nothing dropped
    assert len(deps.accounts.users()) == 3


def test_an_alert_is_stored_once_and_html_in_it_is_escaped(deps: Deps) -> None:
    from alerts_helpers import sample_alert

    alert = sample_alert(1, entry_label="<img src=x onerror=alert(1)>")
    item = received(alert.encode())
    deps.store.ingest([item, item])
    deps.store.ingest([item])
    assert deps.store.count_alerts() == 1
    client = client_for(deps)
    login(client, "olga")
    page = client.get(f"/alerts/{item.alert_id}").text
    assert "<img src=x" not in page and "&lt;img src=x" in page
    stored = json.loads(deps.store.get_alert(item.alert_id)["document"])
    assert stored["alert_id"] == item.alert_id and "crop" not in stored


def test_audit_head_checks() -> None:
    assert audit_problem(None, None, 5, "h5", []) is None
    assert audit_problem(5, "h5", 9, "h9", [{"seq": 5, "hash": "h5"}]) is None
    assert "backwards" in str(audit_problem(9, "h9", 4, "h4", []))
    assert "rewritten" in str(audit_problem(9, "h9", 9, "other", []))
    assert "does not continue" in str(audit_problem(9, "h9", 30, "h30", [{"seq": 9, "hash": None}]))
    assert audit_problem(9, "h9", 30, "h30", [{"seq": 7, "hash": "h7"}]) is None  # no link: unknown


def test_bench_dispatch_runs_small(capsys: pytest.CaptureFixture[str]) -> None:
    import edge.cli

    code = edge.cli.main(
        ["bench", "dispatch", "--alerts", "300", "--stored", "600", "--repeats", "5", "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["stored"] == 600 and report["ingest"]["per_s"] > 0
    assert report["first_page_api"]["p95_ms"] > 0
