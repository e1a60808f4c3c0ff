"""Logging in (an admin or reviewer token -> a session cookie) and out."""

from __future__ import annotations

import re

from flask import Response, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.auth import Forbidden, admit_attempt, role_for_token
from api.resources import resources
from api.web import bp, login, web_session

# A path of this page, in visible ASCII without backslashes: never another site (an open
# redirect), never a CR/LF that would end the Location header. url_for's own paths match.
_ADMIN_PATH = re.compile(r"/admin(?:[/?#][!-\[\]-~]*)?")


def _safe_next(target: str | None) -> str:
    """Where to go after logging in; anything else than a path of this page goes home."""
    if target and _ADMIN_PATH.fullmatch(target):
        return target
    return url_for("web.doodles")


@bp.get("/login")
def login_form(error: str | None = None, status: int = 200) -> Response:
    token = login.login_csrf()
    body = render_template(
        "login.html", csrf=token, error=error, next=_safe_next(request.args.get("next"))
    )
    response = make_response(body, status)
    login.set_login_csrf(response, token)
    return response


@bp.post("/login", endpoint="login")
def submit_login() -> BaseResponse:
    expected = request.cookies.get(login.LOGIN_CSRF_COOKIE, "")
    if not expected or not login.same(request.form.get(login.CSRF_FIELD), expected):
        raise Forbidden("missing or wrong CSRF token; reload the login page", {})
    token = request.form.get("token", "").strip()
    found = role_for_token(resources().settings, token)
    admit_attempt(found is not None)  # failed attempts count per address, as on the API
    if found is None:
        return login_form("That token is not an admin or reviewer token.", 401)
    role, token_id = found
    session = login.start(role, token_id)
    response = redirect(_safe_next(request.form.get("next")), 303)
    login.set_cookie(response, session)
    return response


@bp.post("/logout")
def logout() -> BaseResponse:
    login.end(web_session().sid)
    response = redirect(url_for("web.login_form"), 303)
    login.clear_cookie(response)
    return response


@bp.get("/")
def home() -> BaseResponse:
    return redirect(url_for("web.doodles"))
