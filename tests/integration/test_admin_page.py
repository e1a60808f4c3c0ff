"""The admin page (/admin) through Flask's test client, on real Postgres, Redis and S3:
logging in and out, the cookie's flags, CSRF refusals, what reviewers may not do, and
decisions reaching Postgres. The browser tests (tests/browser/) drive the same pages."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid

import pytest
from sqlalchemy import select

from api.auth import key_id
from db.models import Label, LabelSource, ModelAliasHistory
from tests.fixtures.app import ADMIN_TOKEN, post_recognition, recognize
from tests.fixtures.players import secret_for

REVIEWER_TOKEN = "test-reviewer-token"
COOKIE = "doodle_admin_session"


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, reviewer_tokens=(REVIEWER_TOKEN,))


def _csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def log_in(client, token: str, *, base: str = "http://localhost"):
    form = client.get("/admin/login", base_url=base)
    assert form.status_code == 200
    return client.post(
        "/admin/login",
        data={"csrf_token": _csrf_of(form.text), "token": token, "next": "/admin/doodles"},
        base_url=base,
    )


def _session_cookie_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    assert len(headers) == 1, response.headers
    return headers[0]


def _page_csrf(client) -> str:
    page = client.get("/admin/doodles")
    assert page.status_code == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found
    return found.group(1)


@pytest.fixture
def kept_doodle(client, worker_runtime, sample_drawings, seed_version):
    """A doodle posted with consent to keep and train, finished by the worker."""
    counter = iter(range(1000))

    def make(word: str = "apple", player: str | None = None) -> uuid.UUID:
        n = next(counter)
        body = {
            "drawing": sample_drawings[word][n % 25]["drawing"],
            "word": word,
            "player_id": player or f"page-player-{n}",
            "consent": {"store": True, "train": True, "version": "2026-11"},
        }
        secret = secret_for(client, body["player_id"])
        rid = uuid.UUID(post_recognition(client, body, secret)["id"])
        assert recognize(worker_runtime, rid) == "done"
        return rid

    return make


def test_login_sets_a_strict_http_only_cookie_without_the_token(client):
    response = log_in(client, ADMIN_TOKEN)
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/doodles")
    cookie = _session_cookie_header(response)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert ADMIN_TOKEN not in cookie
    page = client.get("/admin/doodles")
    assert page.status_code == 200 and "admin" in page.text
    assert page.headers["Cache-Control"] == "private, no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_the_cookie_is_secure_over_https(client):
    response = log_in(client, REVIEWER_TOKEN, base="https://localhost")
    assert response.status_code == 303
    assert "Secure" in _session_cookie_header(response)


def test_a_wrong_token_or_a_missing_csrf_token_logs_nobody_in(client):
    refused = log_in(client, "not-a-token")
    assert refused.status_code == 401 and "not an admin or reviewer token" in refused.text
    assert not [h for h in refused.headers.getlist("Set-Cookie") if h.startswith(COOKIE)]
    forged = client.post("/admin/login", data={"token": ADMIN_TOKEN, "csrf_token": "made-up"})
    assert forged.status_code == 403
    assert client.get("/admin/doodles").status_code == 302  # still logged out


def test_pages_need_a_login(client):
    response = client.get("/admin/models")
    assert response.status_code == 302
    assert "/admin/login?next=/admin/models" in response.headers["Location"]
    assert client.post("/admin/cycles").status_code == 401


def test_logout_ends_the_session_even_for_a_copied_cookie(client, app):
    log_in(client, ADMIN_TOKEN)
    stolen = client.get_cookie(COOKIE, path="/admin")
    assert stolen is not None
    out = client.post("/admin/logout", data={"csrf_token": _page_csrf(client)})
    assert out.status_code == 303 and out.headers["Location"].endswith("/admin/login")
    other = app.test_client()
    other.set_cookie(COOKIE, stolen.value, path="/admin")
    assert other.get("/admin/doodles").status_code == 302


def test_a_session_ends_when_its_token_is_no_longer_configured(client, app, settings):
    from api import create_app
    from api.resources import EXTENSION

    log_in(client, REVIEWER_TOKEN)
    cookie = client.get_cookie(COOKIE, path="/admin")
    assert cookie is not None
    # The same deployment restarted without that reviewer's token.
    later = create_app(dataclasses.replace(settings, reviewer_tokens=()))
    try:
        browser = later.test_client()
        browser.set_cookie(COOKIE, cookie.value, path="/admin")
        assert browser.get("/admin/doodles").status_code == 302
    finally:
        later.extensions[EXTENSION].close()


def test_posts_without_the_csrf_token_are_refused(client, kept_doodle, db_session_factory):
    rid = kept_doodle()
    log_in(client, REVIEWER_TOKEN)
    body = json.dumps({"ids": [str(rid)], "action": "label", "label": "pear"})
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        response = client.post("/admin/doodles/decisions", data=body, headers=headers)
        assert response.status_code == 403, response.text
    assert client.post("/admin/logout").status_code == 403
    with db_session_factory() as s:
        assert s.scalars(select(Label).where(Label.recognition_id == rid)).all() == []


def test_a_decision_is_stored_with_who_made_it(client, kept_doodle, db_session_factory):
    apple, cup = kept_doodle("apple"), kept_doodle("cup")
    log_in(client, REVIEWER_TOKEN)
    grid = client.get("/admin/doodles?word=apple")
    assert str(apple) in grid.text and str(cup) not in grid.text
    thumb = client.get(f"/admin/doodles/{apple}.png")
    assert thumb.status_code == 200 and thumb.data.startswith(b"\x89PNG")
    csrf = {"X-CSRF-Token": _page_csrf(client)}
    relabel = {"ids": [str(apple)], "action": "label", "label": " Pear "}
    # Not a word production knows: the page asks before proposing it as a new one.
    response = client.post("/admin/doodles/decisions", json=relabel, headers=csrf)
    assert response.status_code == 422, response.text
    assert response.json["error"]["details"]["reason"] == "unknown_word"
    assert "unknown word 'pear'" in response.json["error"]["message"]
    response = client.post(
        "/admin/doodles/decisions", json={**relabel, "new_word": True}, headers=csrf
    )
    assert response.status_code == 200, response.text
    assert response.json["results"][str(apple)] == {
        "ok": True,
        "decision": "label",
        "label": "pear",
    }
    confirm = {"ids": [str(cup)], "action": "confirm"}
    assert client.post("/admin/doodles/decisions", json=confirm, headers=csrf).status_code == 200
    with db_session_factory() as s:
        rows = s.execute(
            select(Label.recognition_id, Label.label, Label.actor).where(
                Label.source == LabelSource.reviewer
            )
        ).all()
    who = f"reviewer:{key_id(REVIEWER_TOKEN)}"
    assert sorted((r.label, r.actor) for r in rows) == [("cup", who), ("pear", who)]


def test_bad_input_gets_a_clear_400_or_404(client, kept_doodle):
    log_in(client, ADMIN_TOKEN)
    csrf = {"X-CSRF-Token": _page_csrf(client)}
    rid = str(kept_doodle())
    for body, field in [
        ({"ids": [rid], "action": "burn"}, "action"),
        ({"ids": [], "action": "discard"}, "ids"),
        ({"ids": [rid], "action": "label", "label": ""}, "label"),
        ({"ids": [rid], "action": "label", "label": "?"}, "label"),
        ({"ids": [rid], "action": "label", "label": "cup", "new_word": "yes"}, "new_word"),
    ]:
        response = client.post("/admin/doodles/decisions", json=body, headers=csrf)
        assert response.status_code == 400 and response.json["error"]["details"]["field"] == field
    unknown = {"ids": [str(uuid.uuid4())], "action": "discard"}
    assert client.post("/admin/doodles/decisions", json=unknown, headers=csrf).status_code == 404
    assert client.get("/admin/doodles?min_confidence=high").status_code == 400
    assert client.get("/admin/doodles?after=nonsense").status_code == 400


def test_an_erased_players_doodles_vanish_at_once(client, kept_doodle):
    gone = kept_doodle("apple", player="erased-player")
    kept = kept_doodle("apple", player="staying-player")
    log_in(client, REVIEWER_TOKEN)
    assert str(gone) in client.get("/admin/doodles").text
    erase = client.delete(
        "/v1/players/erased-player", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert erase.status_code in (200, 202), erase.text
    page = client.get("/admin/doodles")
    assert str(gone) not in page.text and str(kept) in page.text
    assert client.get(f"/admin/doodles/{gone}.png").status_code == 404


def test_reviewers_see_no_admin_buttons_and_are_refused(client, seed_version):
    log_in(client, REVIEWER_TOKEN)
    page = client.get("/admin/models")
    assert page.status_code == 200 and f"v{seed_version}" in page.text
    assert "Start a flywheel cycle" not in page.text and "Promote…" not in page.text
    csrf = {"csrf_token": _page_csrf(client)}
    for path in (
        f"/admin/models/{seed_version}/promote",
        "/admin/models/rollback",
        "/admin/cycles",
    ):
        assert client.post(path, data=csrf).status_code == 403, path
    for path in (f"/admin/models/{seed_version}/promote", "/admin/cycles/new"):
        assert client.get(path).status_code == 403, path


def test_an_admin_promotes_after_a_confirmation(client, seed_version, db_session_factory):
    from tests.fixtures.app import import_version

    log_in(client, ADMIN_TOKEN)
    assert "Start a flywheel cycle" in client.get("/admin/models").text
    settings = client.application.extensions["doodle"].settings
    from ml.network import seed_classes, seed_weights_path

    other = import_version(
        settings, seed_weights_path().read_bytes(), seed_classes(), source="seed-copy"
    )
    confirm = client.get(f"/admin/models/{other}/promote")
    assert confirm.status_code == 200 and f"Promote version {other}" in confirm.text
    moved = client.post(
        f"/admin/models/{other}/promote",
        data={"csrf_token": _csrf_of(confirm.text), "reason": "page test"},
    )
    assert moved.status_code == 303
    with db_session_factory() as s:
        last = s.scalars(select(ModelAliasHistory).order_by(ModelAliasHistory.id.desc())).first()
    assert last is not None and last.to_version_id == other
    assert last.actor == f"admin:{key_id(ADMIN_TOKEN)}" and last.reason == "page test"


def test_the_review_queue_lists_queued_doodles_in_the_queues_order(
    client, kept_doodle, db_session_factory
):
    from db import review_listing, reviews

    first, second, erased = kept_doodle("apple"), kept_doodle("cup"), kept_doodle("apple", "gone")
    with db_session_factory.begin() as s:
        for rid in (first, second, erased):
            assert reviews.queue_review(s, rid, "model_disagrees: sees 'pear' at 91%")
    client.delete("/v1/players/gone", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    log_in(client, REVIEWER_TOKEN)
    page = client.get("/admin/reviews").text
    assert "model_disagrees" in page and str(erased) not in page
    # The queue's own order (db.review_listing), whatever it ranks by.
    with db_session_factory() as s:
        queued = [i.recognition_id for i in review_listing.list_reviews(s).items]
    shown = [rid for rid in queued if rid != erased]
    assert sorted(shown) == sorted([first, second])
    assert [page.index(str(rid)) for rid in shown] == sorted(page.index(str(r)) for r in shown)


def test_an_admin_rolls_back_after_a_confirmation(client, seed_version, db_session_factory):
    from ml.network import seed_classes, seed_weights_path
    from tests.fixtures.app import import_version

    settings = client.application.extensions["doodle"].settings
    import_version(
        settings,
        seed_weights_path().read_bytes(),
        seed_classes(),
        source="copy",
        alias="production",
    )
    log_in(client, ADMIN_TOKEN)
    confirm = client.get("/admin/models/rollback")
    assert confirm.status_code == 200 and "Roll production back" in confirm.text
    back = client.post("/admin/models/rollback", data={"csrf_token": _csrf_of(confirm.text)})
    assert back.status_code == 303 and f"production+is+v{seed_version}" in back.headers["Location"]
    with db_session_factory() as s:
        last = s.scalars(select(ModelAliasHistory).order_by(ModelAliasHistory.id.desc())).first()
    assert last is not None and last.to_version_id == seed_version


def test_the_grid_pages_by_cursor(client, kept_doodle, monkeypatch):
    from api.web import doodle_pages

    monkeypatch.setattr(doodle_pages, "PAGE_SIZE", 2)
    made = [kept_doodle("apple") for _ in range(3)]
    log_in(client, REVIEWER_TOKEN)
    first = client.get("/admin/doodles?word=apple").text
    found = re.search(r'id="next-page" href="([^"]+)"', first)
    assert found
    second = client.get(found.group(1).replace("&amp;", "&")).text
    ids = re.findall(r'data-id="([0-9a-f-]{36})"', first) + re.findall(
        r'data-id="([0-9a-f-]{36})"', second
    )
    assert ids == [str(rid) for rid in reversed(made)]  # newest first, none twice
    assert 'id="next-page"' not in second
