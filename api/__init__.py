"""The HTTP API: thin on purpose (validate, record, enqueue, answer). Never imports torch."""

from __future__ import annotations

import logging

from flask import Flask

from api import (
    admin,
    cycles,
    doodles,
    erasures,
    guesses,
    meta,
    players,
    recognitions,
    reviews,
    web,
    words,
)
from api.errors import register_error_handlers
from api.metrics import register_metrics
from api.request_ids import register_request_ids
from api.resources import EXTENSION, Resources
from core.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Flask:
    """Build the app from resolved settings (URLs filled in; see devtools.embedded)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = Resources(settings)
    register_metrics(app)  # first: its clock starts before the other hooks
    register_request_ids(app)
    register_error_handlers(app)
    app.register_blueprint(meta.bp)
    app.register_blueprint(recognitions.bp)
    app.register_blueprint(guesses.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(reviews.bp)
    app.register_blueprint(doodles.bp)
    app.register_blueprint(cycles.bp)
    app.register_blueprint(words.bp)
    app.register_blueprint(players.bp)
    app.register_blueprint(players.admin_bp)
    app.register_blueprint(erasures.bp)
    app.register_blueprint(web.bp)  # the admin page, /admin
    if not settings.client_keys:
        log.warning("DOODLE_CLIENT_KEYS is empty: every recognition request will get 401")
    return app
