"""The operations of the API: for each path and method, its parameters, bodies (by
model), answers, security and links. `api.openapi` assembles them into the document.

Over 400 lines on purpose: one table, an entry per operation, read top to bottom like
the API reference it becomes; split, a route's description would live far from its
neighbours'."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from api.contract import cycles as cy
from api.contract import doodles as dc
from api.contract import limits
from api.contract import requests as rq
from api.contract import responses as rs
from api.contract import words as wd
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.idempotency import KEY_PATTERN, MAX_KEY_LENGTH, REPLAYED
from core.settings import Settings

REF = "#/components/schemas/{model}"
API_KEY: list[dict[str, list[str]]] = [{"ApiKey": []}]
ADMIN: list[dict[str, list[str]]] = [{"AdminBearer": []}]
# Reviewers' routes: a reviewer's token, or an admin's (admins may do all reviewers do).
REVIEWER: list[dict[str, list[str]]] = [{"AdminBearer": []}, {"ReviewerBearer": []}]
# The player's own secret, or an admin acting for them (audited).
PLAYER: list[dict[str, list[str]]] = [{"PlayerSecret": []}, {"AdminBearer": []}]
RETRY_AFTER = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
# Every answer names its request (core.logs): the client's X-Request-ID if it sent a
# plausible one (up to 64 of A-Za-z0-9._:-), else a new one; log lines carry the same.
REQUEST_ID = {
    "X-Request-ID": {
        "description": "the request's id, as in the server's logs (the one sent, if usable)",
        "schema": {"type": "string", "maxLength": 64},
    }
}
UUID = {"type": "string", "format": "uuid"}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel] | None) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model) if model else {"type": "object"}}}


@dataclass
class Op:
    """One operation: its answers map a status to a description, or (description, model)."""

    operation_id: str
    summary: str
    answers: dict[int, str | tuple[str, type[BaseModel] | None]]
    security: list[dict[str, list[str]]] | None = None
    description: str | None = None
    body: dict[str, Any] | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[int, dict[str, Any]] = field(default_factory=dict)
    links: dict[int, dict[str, Any]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        answers = dict(self.answers)
        if self.security is not None:
            # Every authenticated route counts failed keys (and client routes, requests).
            answers.setdefault(429, "too many requests, or failed authentications; see Retry-After")
            answers.setdefault(503, "a backing service is unavailable; see Retry-After")
        if self.security == ADMIN:
            answers.setdefault(403, ADMIN_403)
        responses: dict[str, Any] = {}
        for status, answer in sorted(answers.items()):
            text, model = answer if isinstance(answer, tuple) else (answer, None)
            if model is None and status >= 400:
                model = rs.Error
            response: dict[str, Any] = {"description": text, "headers": dict(REQUEST_ID)}
            if model is not None:
                response["content"] = _json(model)
            if status in (429, 503):
                response["headers"] = {**response["headers"], **RETRY_AFTER}
            if status in self.headers:
                response["headers"] = {**response.get("headers", {}), **self.headers[status]}
            if status in self.links:
                response["links"] = self.links[status]
            responses[str(status)] = response
        out: dict[str, Any] = {"operationId": self.operation_id, "summary": self.summary}
        if self.description:
            out["description"] = self.description
        if self.security is not None:
            out["security"] = self.security
        if self.parameters:
            out["parameters"] = self.parameters
        if self.body is not None:
            out["requestBody"] = self.body
        out["responses"] = responses
        return out


def _path(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param = {"name": name, "in": "path", "required": True, "schema": schema}
    return {**param, "description": description} if description else param


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A model of query parameters as OpenAPI parameters."""
    schema = model.model_json_schema(ref_template=REF)
    params = []
    for name, prop in schema["properties"].items():
        # An optional parameter is left out, never sent as null: drop the null branch.
        branches = [b for b in prop.pop("anyOf", []) if b != {"type": "null"}]
        prop = {**branches[0], **prop} if branches else prop
        if "default" in prop and prop["default"] is None:
            del prop["default"]
        param = {"name": name, "in": "query", "required": name in schema.get("required", [])}
        if "description" in prop:
            param["description"] = prop.pop("description")
        params.append({**param, "schema": prop})
    return params


def _body(content: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": content}


RECOGNITION_ID = _path("recognition_id", UUID)
VERSION = _path("version", {"type": "integer", "minimum": 0, "maximum": limits.MAX_VERSION_ID})
ALIAS = _path("alias", {"type": "string", "minLength": 1, "maxLength": limits.ALIAS_NAME_LENGTH})
PLAYER_ID = _path(
    "player_id",
    {"type": "string", "minLength": 1, "maxLength": 64},
    "the player's id, as POST /v1/players issued it",
)
IDEMPOTENCY_KEY = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "description": "a key the client makes for this request (a UUID, say), sent again "
    "with each retry of it: a retry answers for what the first request made (the same "
    "id), and records nothing twice. Scoped per client key; a key answers for "
    "DOODLE_IDEMPOTENCY_TTL_HOURS (default 24) and is then free again. The same key with "
    "another request is a 422.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": KEY_PATTERN,
    },
}
PLAYER_SECRET = {
    "name": "X-Player-Secret",
    "in": "header",
    "description": "the secret POST /v1/players issued with the player_id; needed when the "
    "recognition names a player_id, else ignored",
    "schema": {"type": "string"},
}
REPLAYED_HEADER = {
    REPLAYED: {
        "description": "true: the answer of a retry (same Idempotency-Key); nothing new "
        "was recorded",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
KEY_REUSED = "this Idempotency-Key was used for a different request (`details.reason`: key_reused)"
KEY_RACE = "the Idempotency-Key expired or was freed while this request used it; send it again"
BAD_KEY = "an Idempotency-Key that is not 1 to 255 printable ASCII characters"
CLIENT_401 = "missing or unknown API key"
PLAYER_401 = (
    "no X-Player-Secret nor admin token (a client key is not enough), or an unknown admin token"
)
PLAYER_403 = "this secret is not the player's (also for an unknown player, unless admin)"
PLAYER_404 = "no such player (admin tokens only)"
ADMIN_401 = "missing or unknown bearer token (admin or reviewer)"
ADMIN_403 = "a reviewer's token: only admins may do this"
UNKNOWN_WORD = (
    "the label is not a known word (`details.reason`: unknown_word, with `details.suggestions`"
    ", the known words closest to it), or an admin rejected it (rejected_word); send "
    '"new_word": true to propose an unknown word'
)
BAD_JSON = "invalid JSON, fields or drawing; `details.field` names the field"
TOO_LARGE = "body over the limit"
NEXT_PAGE = {"operationId": "listReviews", "parameters": {"after": "$response.body#/next"}}
NEXT_DOODLES = {"operationId": "listDoodles", "parameters": {"after": "$response.body#/next"}}
READ_CYCLE = {"operationId": "readCycle", "parameters": {"run_id": "$response.body#/cycle/id"}}
READ_ERASURE = {
    "operationId": "readErasure",
    "parameters": {"erasure_id": "$response.body#/id"},
}
READ_RECOGNITION = {
    "operationId": "readRecognition",
    "parameters": {"recognition_id": "$response.body#/id"},
}


def operations(settings: Settings) -> dict[str, dict[str, Op]]:
    """Every path and method the API serves, with the models of its bodies."""
    wait = settings.max_wait_seconds
    move_body = _body(_json(rq.MoveRequest), required=False)
    return {
        "/v1/recognitions": {
            "post": Op(
                "createRecognition",
                "Recognise a doodle",
                {
                    200: ("finished within the Prefer: wait time", rs.Recognition),
                    202: ("accepted; poll the Location", rs.Recognition),
                    400: f"{BAD_JSON}; or {BAD_KEY}",
                    401: f"{CLIENT_401}; or a player_id without that player's X-Player-Secret "
                    "(the same answer for an unknown id and a wrong secret; WWW-Authenticate "
                    "names X-Player-Secret): nothing was recorded",
                    409: KEY_RACE,
                    413: TOO_LARGE,
                    415: "neither JSON nor PNG",
                    422: KEY_REUSED,
                    503: "a backing service is unavailable; nothing was recorded",
                },
                security=API_KEY,
                description="A doodle may name its player (player_id, issued by POST "
                "/v1/players) only with the player's secret in X-Player-Secret; a consent "
                "block needs the player and replaces the consent in force when it differs. "
                "A recognition never creates a player. A retry with the same Idempotency-Key "
                f"answers with the recognition the first request made, as it is now ({REPLAYED}: "
                "true; 200 once finished, else 202).",
                parameters=[
                    IDEMPOTENCY_KEY,
                    PLAYER_SECRET,
                    {
                        "name": "Prefer",
                        "in": "header",
                        "description": f"wait=N (RFC 7240, N <= {wait:g}): answer 200 with the "
                        "result if it is ready within N seconds",
                        "schema": {"type": "string", "example": "wait=5"},
                    },
                    *[
                        {
                            **p,
                            "description": f"{p.get('description', '')} PNG bodies only "
                            "(with a JSON body it goes in the body; here it is checked and "
                            "ignored).",
                        }
                        for p in _query(rq.PngQuery)
                    ],
                ],
                body=_body(
                    {
                        **_json(rq.RecognitionRequest),
                        "image/png": {
                            "schema": {
                                "type": "string",
                                "format": "binary",
                                "description": "at most "
                                f"{limits.MAX_PNG_SIDE}x{limits.MAX_PNG_SIDE} pixels",
                            }
                        },
                    }
                ),
                headers={
                    200: REPLAYED_HEADER,
                    202: {
                        "Location": {"schema": {"type": "string"}},
                        "Retry-After": RETRY_AFTER["Retry-After"],
                        **REPLAYED_HEADER,
                    },
                },
                links={200: {"read": READ_RECOGNITION}, 202: {"read": READ_RECOGNITION}},
            )
        },
        "/v1/recognitions/{recognition_id}": {
            "get": Op(
                "readRecognition",
                "Read a recognition",
                {
                    200: ("the recognition", rs.Recognition),
                    401: CLIENT_401,
                    404: "no such recognition",
                    503: "a backing service is unavailable",
                },
                security=API_KEY,
                parameters=[RECOGNITION_ID],
            )
        },
        "/v1/guesses": {
            "post": Op(
                "createGuesses",
                "Live guesses for the strokes drawn so far (nothing is stored)",
                {
                    200: ("the model's best guesses", rs.LiveGuesses),
                    400: BAD_JSON,
                    401: CLIENT_401,
                    413: TOO_LARGE,
                    415: "not JSON",
                    429: "workers busy: guesses are shed; see Retry-After",
                    503: "no worker answered in time; see Retry-After",
                },
                security=API_KEY,
                description="Send one every few hundred milliseconds while the player draws. "
                "Guesses go to the workers ahead of recognitions, and are shed with 429 when "
                "the workers are busy.",
                body=_body(_json(rq.GuessRequest)),
            )
        },
        "/v1/words": {
            "get": Op(
                "listWords",
                "Words the production model knows",
                {200: ("the words", rs.Words), 503: "a backing service is unavailable"},
            )
        },
        "/healthz": {"get": Op("healthz", "Liveness", {200: "alive"})},
        "/readyz": {
            "get": Op(
                "readyz",
                "Readiness: Postgres, Redis, object storage, production model",
                {200: "ready", 503: "a dependency is unavailable"},
            )
        },
        "/openapi.json": {"get": Op("openapi", "This document", {200: "OpenAPI"})},
        "/metrics": {
            "get": Op(
                "metrics",
                "Prometheus metrics (text format)",
                {200: "metrics", 401: "DOODLE_METRICS_TOKEN is set: send it as a bearer token"},
            )
        },
        "/v1/admin/models": {
            "get": Op(
                "listModels",
                "Model versions with their aliases, classes, metrics, parent",
                {200: ("every version, newest first", rs.ModelList), 401: ADMIN_401},
                security=REVIEWER,
            )
        },
        "/v1/admin/models/{version}": {
            "get": Op(
                "readModel",
                "One model version, with the manifest of its training data",
                {200: ("the version", rs.ModelVersion), 401: ADMIN_401, 404: "no such version"},
                security=REVIEWER,
                parameters=[VERSION],
            )
        },
        "/v1/admin/models/{version}/promote": {
            "post": Op(
                "promoteModel",
                "Point the production alias at this version",
                {
                    200: ("the move", rs.MoveResult),
                    400: "invalid body",
                    401: ADMIN_401,
                    404: "no such model version",
                    413: TOO_LARGE,
                },
                security=ADMIN,
                description="Workers serve it within seconds, without a restart. Promoting "
                "the current production version changes nothing.",
                parameters=[VERSION],
                body=move_body,
            )
        },
        "/v1/admin/models/rollback": {
            "post": Op(
                "rollbackModel",
                "Move production back to the previous production version",
                {
                    200: ("the move", rs.MoveResult),
                    400: "invalid body",
                    401: ADMIN_401,
                    409: "no earlier production version to go back to",
                    413: TOO_LARGE,
                },
                security=ADMIN,
                description="Undoes the latest move of production not undone yet: a second "
                "rollback goes one step further back.",
                body=move_body,
            )
        },
        "/v1/admin/models/aliases/{alias}/history": {
            "get": Op(
                "aliasHistory",
                "Every move of an alias, newest first: who, when, from, to",
                {200: ("the moves", rs.AliasHistory), 401: ADMIN_401, 404: "no such alias"},
                security=REVIEWER,
                parameters=[ALIAS],
            )
        },
        "/v1/admin/reviews": {
            "get": Op(
                "listReviews",
                "Reviews of one status, most useful first, a page at a time",
                {
                    200: ("one page", rs.ReviewPage),
                    400: "bad status, limit or cursor",
                    401: ADMIN_401,
                },
                security=REVIEWER,
                description="Keyset pagination: pass `next` as `after` for the next page "
                "(null on the last). Pending reviews come new words first (a prompt the "
                "production model does not know), then disagreements (its guess is not the "
                "prompt), then the rest; the least confident guess first within each, then "
                "the oldest queued. Resolved ones: oldest queued first.",
                parameters=_query(rq.ReviewListQuery),
                links={200: {"next": NEXT_PAGE}},
            )
        },
        "/v1/admin/reviews/{recognition_id}/drawing.png": {
            "get": Op(
                "reviewDrawing",
                "The stored drawing of a doodle, as PNG",
                {
                    200: "the drawing",
                    401: ADMIN_401,
                    404: "no such recognition, or no drawing stored for it",
                    503: "object storage is unavailable",
                },
                security=REVIEWER,
                parameters=[RECOGNITION_ID],
            )
        },
        "/v1/admin/cycles": {
            "post": Op(
                "requestCycle",
                "Ask for a flywheel cycle (never two at once)",
                {
                    200: ("one is requested or running already: that one", cy.CycleAnswer),
                    202: ("asked for; poll the Location", cy.CycleAnswer),
                    400: "invalid body",
                    401: ADMIN_401,
                    413: TOO_LARGE,
                },
                security=ADMIN,
                description="The flywheel's trigger (`doodle flows serve`) takes the cycle "
                "within DOODLE_FLYWHEEL_POLL_SECONDS. At most one cycle is requested or "
                "running: asking again answers 200 with that one (`existing: true`), so a "
                "retry never queues a second. Audited (cycle.request).",
                body=_body(_json(cy.CycleRequest), required=False),
                headers={
                    200: {"Location": {"schema": {"type": "string"}}},
                    202: {"Location": {"schema": {"type": "string"}}},
                },
                links={200: {"read": READ_CYCLE}, 202: {"read": READ_CYCLE}},
            ),
            "get": Op(
                "listCycles",
                "The latest flywheel cycles, newest first, and the active one",
                {200: ("the cycles", cy.CycleList), 400: "bad limit", 401: ADMIN_401},
                security=REVIEWER,
                parameters=_query(cy.CycleListQuery),
            ),
        },
        "/v1/admin/cycles/{run_id}": {
            "get": Op(
                "readCycle",
                "One flywheel cycle: its status, stage while running, and outcome",
                {200: ("the cycle", cy.Cycle), 401: ADMIN_401, 404: "no such cycle"},
                security=REVIEWER,
                parameters=[
                    _path("run_id", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1})
                ],
            )
        },
        "/v1/admin/doodles": {
            "get": Op(
                "listDoodles",
                "Every kept doodle, newest first, filtered, a page at a time",
                {
                    200: ("one page", dc.DoodlePage),
                    400: "a bad filter, limit or cursor; `details.field` names it",
                    401: ADMIN_401,
                },
                security=REVIEWER,
                description="Game doodles whose player let us keep them, once recognised; "
                "never those of a player whose erasure is pending or done. Filters combine "
                "(AND); `label`/`label_source` are the effective label (a reviewer's beats "
                "the dataset's, which beats the automatic ones). Keyset pagination: pass "
                "`next` as `after` (null on the last page); doodles arriving meanwhile never "
                "shift or repeat the pages after the first.",
                parameters=_query(dc.DoodleListQuery),
                links={200: {"next": NEXT_DOODLES}},
            )
        },
        "/v1/admin/doodles/decisions": {
            "post": Op(
                "decideDoodles",
                "Label, confirm or discard many doodles at once (all or nothing)",
                {
                    200: ("what each doodle got", dc.DecisionsResult),
                    400: "invalid body, ids or label",
                    401: ADMIN_401,
                    404: "some ids are not doodles the list shows (`details.unknown`); "
                    "nothing was decided",
                    409: "some doodles cannot take the decision (`details.refused`: id -> "
                    "why); nothing was decided",
                    413: TOO_LARGE,
                    422: UNKNOWN_WORD + "; nothing was decided",
                },
                security=REVIEWER,
                description="`label` gives every doodle the reviewer label `label`; "
                "`confirm` gives each its current effective label (else its prompt word); "
                "`discard` keeps them out of training. Each decision is that of "
                "POST /v1/admin/reviews/{id}, with its audit row (who, when); one more "
                "audit row (review.bulk) records the request.",
                body=_body(
                    {
                        "application/json": {
                            "schema": {"oneOf": [_ref(dc.LabelDoodles), _ref(dc.DecideDoodles)]}
                        }
                    }
                ),
            )
        },
        "/v1/admin/words": {
            "get": Op(
                "listVocabulary",
                "Words reviewers proposed, and admins' decisions about words",
                {200: ("the words", wd.WordList), 400: "bad status or limit", 401: ADMIN_401},
                security=REVIEWER,
                description="The vocabulary beside the production model's classes and the "
                "imported dataset's words. `status=proposed`: the words waiting for an "
                "admin, with how many doodles carry a reviewer's label of each (those "
                "labels do not train until the word is confirmed).",
                parameters=_query(wd.WordListQuery),
            )
        },
        "/v1/admin/words/{word}": {
            "post": Op(
                "decideWord",
                "Confirm or reject a word (proposed or not)",
                {
                    200: ("the word, and its status before", wd.WordDecided),
                    400: "invalid body, or the word is not a word (`details.reason`)",
                    401: ADMIN_401,
                    409: "rejecting a class of the production model or a word of the "
                    "imported dataset",
                    413: TOO_LARGE,
                },
                security=ADMIN,
                description="Confirmed, labels may use the word and its reviewer labels "
                "train; rejected, no label may use it and its reviewer labels never train. "
                "The word is normalised as labels are. Audited (word.confirm, word.reject).",
                parameters=[
                    _path(
                        "word",
                        {"type": "string", "minLength": 1, "maxLength": limits.LABEL_LENGTH},
                        "the word (letters, single spaces, hyphens or apostrophes between)",
                    )
                ],
                body=_body(_json(wd.WordDecision)),
            )
        },
        "/v1/players": {
            "post": Op(
                "createPlayer",
                "A new player: an id the server chooses, and the player's secret (shown once)",
                {
                    201: ("the player's id and secret", rs.NewPlayer),
                    400: f"invalid body (the consent's rules, as PUT consent); or {BAD_KEY}",
                    401: CLIENT_401,
                    409: KEY_RACE,
                    413: TOO_LARGE,
                    415: "a body that is not JSON",
                    422: KEY_REUSED,
                    503: "a backing service is unavailable; nothing was recorded",
                },
                security=API_KEY,
                description="The game asks once per player and keeps both: recognitions name "
                "the player with player_id and X-Player-Secret, and the player's own routes "
                "(/v1/players/{player_id}/…) take the secret. The id is unguessable, so no "
                "one can take a player's id before them; the answer says nothing about other "
                "ids. The body may carry the first consent grant, or be left out. A retry "
                "with the same Idempotency-Key answers with the same id and secret "
                f"({REPLAYED}: true) and makes no second player.",
                parameters=[IDEMPOTENCY_KEY],
                body=_body(_json(rq.PlayerRequest), required=False),
                headers={201: {"Cache-Control": {"schema": {"type": "string"}}, **REPLAYED_HEADER}},
            )
        },
        "/v1/players/{player_id}/consent": {
            "get": Op(
                "readConsent",
                "The player's consent in force, and every grant before it",
                {
                    200: ("the consent", rs.PlayerConsent),
                    401: PLAYER_401,
                    403: PLAYER_403,
                    404: PLAYER_404,
                },
                security=PLAYER,
                parameters=[PLAYER_ID],
            ),
            "put": Op(
                "grantConsent",
                "A new grant, replacing the one in force (the same grant again changes nothing)",
                {
                    200: ("the consent", rs.PlayerConsent),
                    400: "invalid grant (train needs store; version not blank)",
                    401: PLAYER_401,
                    403: PLAYER_403,
                    404: PLAYER_404,
                    413: TOO_LARGE,
                },
                security=PLAYER,
                description="Art. 7: which version of the consent text, which scopes, when. "
                "Scopes narrower than before apply to the player's earlier doodles too: "
                "without `train` none of them is trained on any more. Idempotent by nature "
                "(a retry sends the same grant, which changes nothing): no Idempotency-Key.",
                parameters=[PLAYER_ID],
                body=_body(_json(rq.Consent)),
            ),
            "delete": Op(
                "withdrawConsent",
                "Withdraw consent: from now on nothing more is stored or trained on",
                {
                    200: ("the consent, none in force", rs.PlayerConsent),
                    401: PLAYER_401,
                    403: PLAYER_403,
                    404: PLAYER_404,
                },
                security=PLAYER,
                description="Doodles still queued are not kept; the next relabel and "
                "fine-tune leave out the player's earlier doodles. Stored doodles stay until "
                "the player is erased (DELETE /v1/players/{player_id}). Idempotent by nature: "
                "withdrawing again changes nothing.",
                parameters=[PLAYER_ID],
            ),
        },
        "/v1/players/{player_id}/export": {
            "get": Op(
                "exportPlayer",
                "Everything held about the player, as one JSON document (streamed)",
                {
                    200: ("the document (application/json, sent in chunks)", rs.PlayerExport),
                    401: PLAYER_401,
                    403: PLAYER_403,
                    404: PLAYER_404,
                },
                security=PLAYER,
                description="Art. 15 and 20: the player, their consents, their doodles with "
                "the model's predictions, the strokes and PNGs (from the row, or from object "
                "storage once written), labels and reviews of their doodles, and which model "
                "versions were trained on which doodle. A document cut short (a storage "
                "failure midway) is not valid JSON.",
                parameters=[PLAYER_ID],
            )
        },
        "/v1/players/{player_id}": {
            "delete": Op(
                "erasePlayer",
                "Erase the player from every store (Art. 17); poll the Location",
                {
                    200: ("erased already: the receipt", rs.Erasure),
                    202: ("accepted (or already pending): the request", rs.Erasure),
                    401: PLAYER_401,
                    403: PLAYER_403,
                    404: "no such player, nor an erasure of one (admin tokens only)",
                },
                security=PLAYER,
                description="Removes the player's doodles (rows, objects, Redis), labels, "
                "reviews, consents and the player; marks the model versions trained on the "
                "doodles. Idempotent: while pending, the same request; once done, the "
                "receipt (the player's secret is gone with them: keep the Location).",
                parameters=[PLAYER_ID],
                headers={
                    200: {"Location": {"schema": {"type": "string"}}},
                    202: {"Location": {"schema": {"type": "string"}}},
                },
                links={200: {"read": READ_ERASURE}, 202: {"read": READ_ERASURE}},
            )
        },
        "/v1/erasures/{erasure_id}": {
            "get": Op(
                "readErasure",
                "An erasure's status and, once done, its receipt (no personal data)",
                {
                    200: ("the erasure", rs.Erasure),
                    404: "no such erasure",
                    503: "the database is unavailable; see Retry-After",
                },
                description="No credential: the id is random and the answer names the "
                "player only by a keyed hash.",
                parameters=[_path("erasure_id", UUID)],
                headers={200: {"Location": {"schema": {"type": "string"}}}},
            )
        },
        "/v1/admin/players/{player_id}/secret": {
            "post": Op(
                "reissuePlayerSecret",
                "Issue a new secret to a player (the old one stops working); audited",
                {
                    200: ("the new secret, shown once", rs.PlayerSecret),
                    401: ADMIN_401,
                    404: "no such player",
                },
                security=ADMIN,
                description="For players made before secrets were issued, or who lost theirs: "
                "support hands the new secret over.",
                parameters=[PLAYER_ID],
            )
        },
        "/v1/admin/reviews/{recognition_id}": {
            "post": Op(
                "decideReview",
                "Label or discard a doodle (queued or not: a spot check)",
                {
                    200: ("the resolved review", rs.Review),
                    400: "invalid body or label",
                    401: ADMIN_401,
                    404: "no such recognition",
                    409: "the doodle may not be trained on (no consent to train, withdrawn, "
                    "player erased), is not finished, or a discard of a labelled doodle",
                    413: TOO_LARGE,
                    422: UNKNOWN_WORD,
                },
                security=REVIEWER,
                description="A label is recorded with source `reviewer` and beats every "
                "automatic label; labelling again replaces the decision. A discard keeps the "
                "doodle out of relabelling, training and the golden set. Either resolves the "
                "doodle's review (creating one, reason spot_check, if none) and is audited.",
                parameters=[RECOGNITION_ID],
                body=_body(
                    {"application/json": {"schema": {"$ref": REF.format(model="ReviewDecision")}}}
                ),
            )
        },
    }
