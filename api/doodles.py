"""`/v1/admin/doodles`: every collected doodle, for reviewers and admins (bearer tokens
from DOODLE_REVIEWER_TOKENS or DOODLE_ADMIN_TOKENS).

`GET` lists the kept doodles newest first with filters, a keyset page at a time (`next`
is the cursor of the following page, `after=`); doodles of a player whose erasure is
pending or done never appear. `POST /decisions` labels, confirms or discards many at
once, all or nothing, each decision audited (services.labels.decide_many).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import Role, admin_actor, protect_admin_blueprint
from api.contract.doodles import DecideDoodles, DoodleDecisions, DoodleListQuery, LabelDoodles
from api.contract.parsing import Parser, read_body
from api.errors import Conflict, InvalidRequest, NotFound
from api.resources import resources
from api.reviews import word_refused
from db import doodle_listing
from db.doodle_listing import DoodleFilters, DoodleItem, ReviewState
from services import labels as labelling
from services.vocabulary import WordRefused

bp = Blueprint("admin_doodles", __name__, url_prefix="/v1/admin/doodles")

protect_admin_blueprint(bp, Role.REVIEWER)

# The grid's query; the admin page checks its filter form with it too (api.web).
LIST_QUERY: Parser[DoodleListQuery] = Parser(DoodleListQuery)
_DECISIONS: Parser[LabelDoodles | DecideDoodles] = Parser(DoodleDecisions)
# Where a doodle's picture is served (api.reviews serves any kept drawing).
DRAWING_URL = "/v1/admin/reviews/{id}/drawing.png"


def doodle_json(item: DoodleItem) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "created_at": item.created_at.isoformat(),
        "word": item.word,
        "predicted": item.predicted,
        "confidence": item.confidence,
        "label": item.label,
        "label_source": None if item.label_source is None else item.label_source.value,
        "review_status": item.review_status.value,
        "model_version": item.model_version,
        "player_id": item.player_id,
        "drawing_url": DRAWING_URL.format(id=item.id),
    }


def filters_of(query: DoodleListQuery) -> DoodleFilters:
    return DoodleFilters(
        word=query.word,
        predicted=query.predicted,
        label=query.label,
        label_source=query.label_source,
        review=None if query.review is None else ReviewState(query.review),
        min_confidence=query.min_confidence,
        max_confidence=query.max_confidence,
        since=query.since,
        until=query.until,
        model_version=query.model_version,
        player_id=query.player_id,
    )


@bp.get("")
def list_doodles() -> Response:
    query = LIST_QUERY.python(request.args.to_dict())
    with resources().sessions() as s:
        try:
            page = doodle_listing.list_doodles(
                s, filters_of(query), after=query.after, limit=query.limit
            )
        except doodle_listing.InvalidCursor as exc:
            raise InvalidRequest(str(exc), {"field": "after"}) from None
    return jsonify({"doodles": [doodle_json(i) for i in page.items], "next": page.next_cursor})


@bp.post("/decisions")
def decide_many() -> Response:
    if request.mimetype != "application/json":
        raise InvalidRequest("send the body as application/json", {"field": "body"})
    body = _DECISIONS.json(read_body(request, resources().settings.max_body_bytes))
    label = body.label if isinstance(body, LabelDoodles) else None
    try:
        decided = labelling.decide_many(
            resources().sessions,
            body.ids,
            body.action,
            label,
            actor=admin_actor(),
            new_word=body.new_word,
        )
    except WordRefused as exc:
        raise word_refused(exc) from None
    except labelling.DecisionsRefused as exc:
        details: dict[str, Any] = {
            "unknown": [str(i) for i in exc.unknown],
            "refused": {str(i): why for i, why in exc.refused.items()},
        }
        if exc.unknown:
            raise NotFound(
                f"{exc}; these ids are not doodles the grid lists: "
                + ", ".join(details["unknown"][:10]),
                details,
            ) from None
        raise Conflict(str(exc), details) from None
    return jsonify(
        {
            "action": body.action,
            "decided": [
                {
                    "id": str(d.id),
                    "decision": "discard" if d.label is None else "label",
                    "label": d.label,
                }
                for d in decided
            ],
        }
    )
