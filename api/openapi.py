"""The OpenAPI 3.1 document, generated from the models of `api.contract` and the app's
settings (a test checks it covers the url map; schemathesis checks the app keeps it)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from flask import current_app, has_app_context
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from api.contract import cycles as cy
from api.contract import doodles as dc
from api.contract import requests as rq
from api.contract import responses as rs
from api.contract import words as wd
from api.contract.drawing import STROKES_MARK, strokes_schema
from api.contract.operations import REF, operations
from api.resources import EXTENSION
from core.settings import Settings

RESPONSE_MODELS: list[type[BaseModel]] = [
    rs.Error,
    rs.Recognition,
    rs.LiveGuesses,
    rs.Words,
    rs.ModelList,
    rs.ModelVersion,
    rs.MoveResult,
    rs.AliasHistory,
    rs.Review,
    rs.ReviewPage,
    rs.PlayerConsent,
    rs.PlayerExport,
    rs.PlayerSecret,
    rs.NewPlayer,
    rs.Erasure,
    dc.DoodlePage,
    dc.DecisionsResult,
    cy.Cycle,
    cy.CycleAnswer,
    cy.CycleList,
    wd.WordList,
    wd.WordDecided,
]
REQUEST_MODELS: list[type[BaseModel]] = [
    rq.RecognitionRequest,
    rq.GuessRequest,
    rq.MoveRequest,
    rq.Consent,
    rq.PlayerRequest,
    dc.LabelDoodles,
    dc.DecideDoodles,
    cy.CycleRequest,
    wd.WordDecision,
]


def _schemas(settings: Settings) -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "validation") for m in REQUEST_MODELS]
        + [(m, "serialization") for m in RESPONSE_MODELS],
        ref_template=REF,
    )
    schemas: dict[str, Any] = defs["$defs"]
    decision = TypeAdapter(rq.ReviewDecision).json_schema(ref_template=REF)
    schemas.update(decision.pop("$defs", {}))
    schemas["ReviewDecision"] = decision
    schemas["Strokes"] = strokes_schema(settings)
    return _with_strokes_ref(schemas)


def _with_strokes_ref(node: Any) -> Any:
    """The schemas with each STROKES_MARK replaced by a $ref to the settings' `Strokes`."""
    if isinstance(node, dict):
        if node.items() >= STROKES_MARK.items():
            return {"$ref": REF.format(model="Strokes")}
        return {key: _with_strokes_ref(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_strokes_ref(value) for value in node]
    return node


def _document(settings: Settings, routes: frozenset[str] | None) -> dict[str, Any]:
    limits_only = Settings(
        max_body_bytes=settings.max_body_bytes,
        max_strokes=settings.max_strokes,
        max_points=settings.max_points,
        max_coordinate=settings.max_coordinate,
        max_wait_seconds=settings.max_wait_seconds,
    )
    return _cached(limits_only, routes)


@lru_cache(maxsize=8)
def _cached(settings: Settings, routes: frozenset[str] | None) -> dict[str, Any]:
    """Built once per set of limits: pydantic's schema generation takes milliseconds.

    Only the paths the app routes (`routes`, all when None) are stated."""
    paths = {
        path: {method: op.document() for method, op in ops.items()}
        for path, ops in operations(settings).items()
        if routes is None or path in routes
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Doodle flywheel API",
            "version": "1",
            "description": "Send a doodle, get the model's guess. Errors always have the "
            'shape {"error": {"code", "message", "details"}}. Request bodies are limited to '
            f"{settings.max_body_bytes} bytes (413).",
        },
        "components": {
            "schemas": _schemas(settings),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "AdminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "one of DOODLE_ADMIN_TOKENS (everything reviewers may "
                    "do, and moving models, cycles, acting for players)",
                },
                "ReviewerBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "one of DOODLE_REVIEWER_TOKENS (browse, label, confirm, "
                    "discard; admin tokens work wherever these do)",
                },
                "PlayerSecret": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Player-Secret",
                    "description": "the player_secret POST /v1/players issued with the "
                    "player's id, or a new one from POST /v1/admin/players/{id}/secret",
                },
            },
        },
        "paths": paths,
    }


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The document of the current app (its settings and routes), else of the defaults."""
    if not has_app_context():
        return _document(settings or Settings(), None)
    routes = frozenset(_openapi_path(rule.rule) for rule in current_app.url_map.iter_rules())
    return _document(settings or current_app.extensions[EXTENSION].settings, routes)


def _openapi_path(rule: str) -> str:
    """`/models/<int(max=9):version>` -> `/models/{version}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
