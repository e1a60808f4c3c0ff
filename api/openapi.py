"""The OpenAPI 3.1 description of every route (a test checks it covers the url map)."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


STROKES = {
    "type": "array",
    "minItems": 1,
    "description": "Strokes in Quick, Draw! form: [[x...], [y...]] (simplified, 0..255) "
    "or [[x...], [y...], [t...]] (raw screen pixels with times in ms).",
    "items": {
        "type": "array",
        "minItems": 2,
        "maxItems": 3,
        "items": {"type": "array", "minItems": 1, "items": {"type": "number"}},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    },
    "Consent": {
        "type": "object",
        "required": ["store", "train", "version"],
        "properties": {
            "store": {"type": "boolean", "description": "keep the doodle"},
            "train": {"type": "boolean", "description": "use it to train (needs store)"},
            "version": {"type": "string", "description": "version of the consent text"},
        },
    },
    "RecognitionRequest": {
        "type": "object",
        "required": ["drawing"],
        "additionalProperties": False,
        "properties": {
            "drawing": STROKES,
            "word": {"type": "string", "maxLength": 64, "description": "prompt shown"},
            "player_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"},
            "consent": {"$ref": "#/components/schemas/Consent"},
        },
    },
    "Guess": {
        "type": "object",
        "properties": {"label": {"type": "string"}, "confidence": {"type": "number"}},
    },
    "GuessRequest": {
        "type": "object",
        "required": ["drawing"],
        "additionalProperties": False,
        "properties": {"drawing": STROKES},
    },
    "LiveGuesses": {
        "type": "object",
        "required": ["guesses", "model_version"],
        "properties": {
            "guesses": {
                "type": "array",
                "maxItems": 3,
                "description": "best first",
                "items": {"$ref": "#/components/schemas/Guess"},
            },
            "model_version": {"type": "integer"},
            "timings": {"type": "object"},
        },
    },
    "Prediction": {
        "type": "object",
        "properties": {
            "label": {"type": "string"},
            "confidence": {"type": "number"},
            "top": {
                "type": "array",
                "maxItems": 3,
                "items": {"$ref": "#/components/schemas/Guess"},
            },
        },
    },
    "Recognition": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "word": {"type": ["string", "null"]},
            "player_id": {"type": ["string", "null"]},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "prediction": {
                "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Prediction"}]
            },
            "model_version": {"type": ["integer", "null"]},
            "timings": {"type": ["object", "null"]},
            "stored": {
                "type": "boolean",
                "description": "kept, with the player's consent to store: the strokes go to "
                "object storage just after the answer",
            },
            "error": {"type": "string"},
        },
    },
}

API_KEY: list[dict[str, list[str]]] = [{"ApiKey": []}]
ADMIN: list[dict[str, list[str]]] = [{"AdminBearer": []}]

ADMIN_SCHEMAS: dict[str, Any] = {
    "ModelVersion": {
        "type": "object",
        "required": ["version", "aliases", "classes", "metrics", "parent", "created_at"],
        "properties": {
            "version": {"type": "integer"},
            "aliases": {"type": "array", "items": {"type": "string"}},
            "classes": {"type": "array", "items": {"type": "string"}},
            "metrics": {"type": "object"},
            "parent": {"type": ["integer", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "architecture": {"type": "string"},
            "source": {"type": "string"},
            "checksum": {"type": "string", "description": "sha256 of the weights"},
            "dataset_manifest": {
                "type": "object",
                "description": "the data it was trained on (single version only)",
            },
        },
    },
    "AliasMove": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "alias": {"type": "string"},
            "from": {"type": ["integer", "null"]},
            "to": {"type": "integer"},
            "actor": {"type": "string", "description": "cli:<user>, admin:<token id>, flow:…"},
            "reason": {"type": "string"},
            "moved_at": {"type": "string", "format": "date-time"},
        },
    },
    "MoveResult": {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["promote", "rollback"]},
            "alias": {"type": "string"},
            "from": {"type": ["integer", "null"]},
            "to": {"type": "integer"},
            "moved": {
                "type": "boolean",
                "description": "false when the version already was in production",
            },
            "move": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/AliasMove"}]},
            "model": {"$ref": "#/components/schemas/ModelVersion"},
        },
    },
    "MoveRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "maxLength": 1000}},
    },
}
SCHEMAS.update(ADMIN_SCHEMAS)

_VERSION_PARAM = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}
_MOVE_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MoveRequest"}}},
}


def admin_paths() -> dict[str, Any]:
    """The model registry for admins (bearer token from DOODLE_ADMIN_TOKENS)."""
    unauthorized = _error("missing or unknown admin token")
    moved = _json("the move", {"$ref": "#/components/schemas/MoveResult"})
    version = {"$ref": "#/components/schemas/ModelVersion"}
    return {
        "/v1/admin/models": {
            "get": {
                "summary": "Model versions with their aliases, classes, metrics, parent",
                "security": ADMIN,
                "responses": {
                    "200": _json(
                        "every version, newest first",
                        {
                            "type": "object",
                            "properties": {
                                "versions": {"type": "array", "items": version},
                                "production": {"type": ["integer", "null"]},
                            },
                        },
                    ),
                    "401": unauthorized,
                },
            }
        },
        "/v1/admin/models/{version}": {
            "get": {
                "summary": "One model version, with the manifest of its training data",
                "security": ADMIN,
                "parameters": [_VERSION_PARAM],
                "responses": {
                    "200": _json("the version", version),
                    "401": unauthorized,
                    "404": _error("no such model version"),
                },
            }
        },
        "/v1/admin/models/{version}/promote": {
            "post": {
                "summary": "Point the production alias at this version",
                "description": "Workers serve it within seconds, without a restart. "
                "Promoting the current production version changes nothing.",
                "security": ADMIN,
                "parameters": [_VERSION_PARAM],
                "requestBody": _MOVE_BODY,
                "responses": {
                    "200": moved,
                    "400": _error("invalid body"),
                    "401": unauthorized,
                    "404": _error("no such model version"),
                },
            }
        },
        "/v1/admin/models/rollback": {
            "post": {
                "summary": "Move production back to the previous production version",
                "description": "Undoes the latest move of production not undone yet: a "
                "second rollback goes one step further back.",
                "security": ADMIN,
                "requestBody": _MOVE_BODY,
                "responses": {
                    "200": moved,
                    "400": _error("invalid body"),
                    "401": unauthorized,
                    "409": _error("no earlier production version to go back to"),
                },
            }
        },
        "/v1/admin/models/aliases/{alias}/history": {
            "get": {
                "summary": "Every move of an alias, newest first: who, when, from, to",
                "security": ADMIN,
                "parameters": [
                    {"name": "alias", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json(
                        "the moves",
                        {
                            "type": "object",
                            "properties": {
                                "alias": {"type": "string"},
                                "history": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/AliasMove"},
                                },
                            },
                        },
                    ),
                    "401": unauthorized,
                    "404": _error("no such alias"),
                },
            }
        },
    }


REVIEW_SCHEMAS: dict[str, Any] = {
    "Review": {
        "type": "object",
        "required": ["recognition_id", "review_id", "reason", "status", "created_at"],
        "properties": {
            "recognition_id": {"type": "string", "format": "uuid"},
            "review_id": {"type": "integer"},
            "word": {"type": ["string", "null"], "description": "the prompt shown"},
            "prediction": {
                "description": "the model's guess when the doodle was recognised",
                "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Prediction"}],
            },
            "model_version": {"type": ["integer", "null"]},
            "reason": {
                "type": "string",
                "description": "why it was queued (near_empty, scribble, model_disagrees: …), "
                "or spot_check for a doodle a reviewer took up unqueued",
            },
            "status": {"type": "string", "enum": ["pending", "resolved"]},
            "created_at": {"type": "string", "format": "date-time"},
            "resolved_at": {"type": ["string", "null"], "format": "date-time"},
            "resolved_by": {"type": ["string", "null"], "description": "admin:<token id>"},
            "decision": {"type": ["string", "null"], "enum": ["label", "discard", None]},
            "label": {"type": ["string", "null"], "description": "the reviewer's label"},
            "png_key": {"type": ["string", "null"], "description": "object key of the PNG"},
            "drawing_url": {"type": ["string", "null"], "description": "where to see it"},
        },
    },
    "ReviewDecision": {
        "oneOf": [
            {
                "type": "object",
                "required": ["label"],
                "additionalProperties": False,
                "properties": {"label": {"type": "string", "minLength": 1, "maxLength": 64}},
            },
            {
                "type": "object",
                "required": ["discard"],
                "additionalProperties": False,
                "properties": {"discard": {"const": True}},
            },
        ]
    },
}
SCHEMAS.update(REVIEW_SCHEMAS)

_RECOGNITION_PARAM = {
    "name": "recognition_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}


def review_paths() -> dict[str, Any]:
    """The review queue for admins (bearer token from DOODLE_ADMIN_TOKENS)."""
    unauthorized = _error("missing or unknown admin token")
    review = {"$ref": "#/components/schemas/Review"}
    return {
        "/v1/admin/reviews": {
            "get": {
                "summary": "Reviews of one status, oldest queued first, a page at a time",
                "description": "Keyset pagination: pass `next` as `after` for the next page "
                "(null on the last). Ordered by queue time, then id.",
                "security": ADMIN,
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["pending", "resolved"],
                            "default": "pending",
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "description": "the `next` cursor of the previous page",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json(
                        "one page",
                        {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string"},
                                "reviews": {"type": "array", "items": review},
                                "next": {"type": ["string", "null"]},
                            },
                        },
                    ),
                    "400": _error("bad status, limit or cursor"),
                    "401": unauthorized,
                },
            }
        },
        "/v1/admin/reviews/{recognition_id}/drawing.png": {
            "get": {
                "summary": "The stored drawing of a doodle, as PNG",
                "security": ADMIN,
                "parameters": [_RECOGNITION_PARAM],
                "responses": {
                    "200": {
                        "description": "the drawing",
                        "content": {
                            "image/png": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    "401": unauthorized,
                    "404": _error("no such recognition, or no drawing stored for it"),
                    "503": _error("object storage is unavailable"),
                },
            }
        },
        "/v1/admin/reviews/{recognition_id}": {
            "post": {
                "summary": "Label or discard a doodle (queued or not: a spot check)",
                "description": "A label is recorded with source `reviewer` and beats every "
                "automatic label; labelling again replaces the decision. A discard keeps the "
                "doodle out of relabelling, training and the golden set. Either resolves the "
                "doodle's review (creating one, reason spot_check, if none) and is audited.",
                "security": ADMIN,
                "parameters": [_RECOGNITION_PARAM],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ReviewDecision"}
                        }
                    },
                },
                "responses": {
                    "200": _json("the resolved review", review),
                    "400": _error("invalid body or label"),
                    "401": unauthorized,
                    "404": _error("no such recognition"),
                    "409": _error(
                        "the doodle may not be trained on (no consent to train, withdrawn, "
                        "player erased), is not finished, or a discard of a labelled doodle"
                    ),
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    recognition = _json("the recognition", {"$ref": "#/components/schemas/Recognition"})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Doodle flywheel API",
            "version": "1",
            "description": "Send a doodle, get the model's guess. Errors always have the "
            'shape {"error": {"code", "message", "details"}}.',
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "AdminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "one of DOODLE_ADMIN_TOKENS",
                },
            },
        },
        "paths": {
            "/v1/recognitions": {
                "post": {
                    "summary": "Recognise a doodle",
                    "security": API_KEY,
                    "parameters": [
                        {
                            "name": "Prefer",
                            "in": "header",
                            "description": "wait=N (RFC 7240, N <= 10): answer 200 with the "
                            "result if it is ready within N seconds",
                            "schema": {"type": "string", "example": "wait=5"},
                        },
                        {
                            "name": "word",
                            "in": "query",
                            "description": "prompt shown (PNG bodies only)",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "player_id",
                            "in": "query",
                            "description": "player (PNG bodies only)",
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/RecognitionRequest"}
                            },
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "responses": {
                        "200": recognition,
                        "202": {
                            **_json(
                                "accepted; poll the Location",
                                {"$ref": "#/components/schemas/Recognition"},
                            ),
                            "headers": {"Location": {"schema": {"type": "string"}}},
                        },
                        "400": _error("invalid drawing or fields"),
                        "401": _error("missing or unknown API key"),
                        "413": _error("body too large"),
                        "415": _error("neither JSON nor PNG"),
                    },
                }
            },
            "/v1/guesses": {
                "post": {
                    "summary": "Live guesses for the strokes drawn so far (nothing is stored)",
                    "description": "Send one every few hundred milliseconds while the player "
                    "draws. Guesses go to the workers ahead of recognitions, and are shed "
                    "with 429 when the workers are busy.",
                    "security": API_KEY,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/GuessRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            "the model's best guesses", {"$ref": "#/components/schemas/LiveGuesses"}
                        ),
                        "400": _error("invalid drawing or fields"),
                        "401": _error("missing or unknown API key"),
                        "413": _error("body too large"),
                        "415": _error("not JSON"),
                        "429": _error("workers busy: guesses are shed; see Retry-After"),
                        "503": _error("no worker answered in time; see Retry-After"),
                    },
                }
            },
            "/v1/recognitions/{recognition_id}": {
                "get": {
                    "summary": "Read a recognition",
                    "security": API_KEY,
                    "parameters": [
                        {
                            "name": "recognition_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "uuid"},
                        }
                    ],
                    "responses": {
                        "200": recognition,
                        "401": _error("missing or unknown API key"),
                        "404": _error("no such recognition"),
                    },
                }
            },
            "/v1/words": {
                "get": {
                    "summary": "Words the production model knows",
                    "responses": {
                        "200": _json(
                            "the words",
                            {
                                "type": "object",
                                "properties": {
                                    "words": {"type": "array", "items": {"type": "string"}},
                                    "model_version": {"type": ["integer", "null"]},
                                },
                            },
                        )
                    },
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: Postgres, Redis, object storage, production model",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "a dependency is unavailable"},
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
            **admin_paths(),
            **review_paths(),
        },
    }
