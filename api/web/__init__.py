"""The admin page (`/admin`): server-rendered pages for reviewers and admins.

Log in with an admin or reviewer token; browse and decide about doodles with the keyboard
(static/admin.js), work the review queue, and look after the models. Nothing is loaded
from elsewhere (no CDN): templates, CSS and JavaScript are served by the app.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.auth import Forbidden
from api.contract.parsing import read_body
from api.errors import Unauthorized
from api.resources import resources
from api.web import login

bp = Blueprint(
    "web",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

_OPEN = {"web.login", "web.login_form", "web.static"}

# Pages and scripts come from this app only; images may be the thumbnails' PNGs.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@bp.before_request
def _authenticate() -> BaseResponse | None:
    if request.method == "POST" and request.content_length is not None:
        # Read it whole now: a form cut short would parse quietly into fewer fields.
        read_body(request, resources().settings.max_body_bytes)
    if request.endpoint in _OPEN:
        return None
    session = login.current()
    if session is None:
        if request.method == "GET":
            return redirect(url_for("web.login_form", next=request.full_path.rstrip("?")))
        raise Unauthorized("log in at /admin/login first")
    if request.method == "POST" and not login.same(login.sent_csrf(), session.csrf):
        raise Forbidden("missing or wrong CSRF token; reload the page", {})
    g.web_session = session
    # What api.auth.admin_actor() reads, so audit rows name the page's user as the API does.
    g.token_role, g.admin_token_id = session.role, session.token_id
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "web.static":
        response.headers["Cache-Control"] = "private, no-store"
    return response


def web_session() -> login.WebSession:
    session: login.WebSession = g.web_session
    return session


def admin_only() -> None:
    """Reviewers never see the admin buttons; the server refuses them anyway."""
    if not web_session().is_admin:
        raise Forbidden("only an admin may do this", {"role": web_session().role.value})


@bp.app_context_processor
def _template_globals() -> dict[str, object]:
    session = g.get("web_session")
    return {"me": session, "csrf_field": login.CSRF_FIELD}


from api.web import auth_pages, doodle_pages, model_pages  # noqa: E402,F401  (routes)
