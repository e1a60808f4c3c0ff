"""`/v1/admin/reviews`: the review queue for reviewers and admins (bearer tokens from
DOODLE_REVIEWER_TOKENS or DOODLE_ADMIN_TOKENS).

The relabel flow queues doodles it cannot decide about safely; a reviewer looks at the
drawing (`drawing.png`) and labels or discards it. A reviewer's label beats every
automatic one. Any finished doodle can be reviewed, queued or not (a spot check). Every
decision writes an audit row with the actor `reviewer:<short hash of the token>` (or
`admin:…`).

Lists are oldest queued first (the queue's order), a page at a time: `next` is the
cursor of the following page (`after=`), null on the last.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import Role, admin_actor, protect_admin_blueprint
from api.contract.parsing import read_body
from api.errors import Conflict, InvalidRequest, NotFound, ServiceUnavailable, Unprocessable
from api.resources import resources
from api.schemas import parse_review_decision, parse_review_list
from core import segments
from core.drawings import render_png
from core.storage import ObjectNotFound, StorageError
from db import review_listing
from services import labels as labelling
from services.errors import ReviewRefused, UnknownDoodle
from services.vocabulary import WordRefused

log = logging.getLogger(__name__)

bp = Blueprint("admin_reviews", __name__, url_prefix="/v1/admin/reviews")

protect_admin_blueprint(bp, Role.REVIEWER)


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("no such recognition", {"id": raw[:64]}) from None


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def review_json(item: review_listing.ReviewItem) -> dict[str, Any]:
    prediction = None
    if item.prediction_label is not None:
        prediction = {
            "label": item.prediction_label,
            "confidence": item.prediction_confidence,
            "top": item.prediction_top or [],
        }
    rid = item.recognition_id
    return {
        "recognition_id": str(rid),
        "review_id": item.review_id,
        "word": item.word,
        "prediction": prediction,
        "model_version": item.model_version_id,
        "reason": item.reason,
        "status": item.status.value,
        "created_at": item.created_at.isoformat(),
        "resolved_at": _iso(item.resolved_at),
        "resolved_by": item.resolved_by,
        "decision": item.decision,
        "label": item.reviewer_label,
        "png_key": item.png_key,
        "drawing_url": f"{bp.url_prefix}/{rid}/drawing.png" if item.kept else None,
    }


@bp.get("")
def list_reviews() -> Response:
    query = parse_review_list(request.args.to_dict())
    status = query.status
    with resources().sessions() as s:
        try:
            page = review_listing.list_reviews(
                s, status=status, limit=query.limit, after=query.after
            )
        except review_listing.InvalidCursor as exc:
            raise InvalidRequest(str(exc), {"field": "after"}) from None
    return jsonify(
        {
            "status": status,
            "reviews": [review_json(item) for item in page.items],
            "next": page.next_cursor,
        }
    )


@bp.get("/<recognition_id>/drawing.png")
def drawing(recognition_id: str) -> Response:
    """The doodle as PNG: the image it was sent as, or its strokes drawn now."""
    rid = _parse_id(recognition_id)
    res = resources()
    with res.sessions() as s:
        try:
            kept = review_listing.get_kept_drawing(s, rid)
        except review_listing.UnknownRecognition:
            raise NotFound("no such recognition", {"id": str(rid)}) from None
    if kept is None:
        raise NotFound("no drawing is stored for this recognition", {"id": str(rid)})
    data = _png_of(kept, rid)
    response = Response(data, mimetype="image/png")
    # A player's drawing: never kept by shared caches or the browser.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _png_of(kept: review_listing.KeptDrawing, rid: uuid.UUID) -> bytes:
    # Not written to object storage yet (just finished, or storage was down): the row has it.
    if kept.payload_png is not None:
        return kept.payload_png
    if kept.payload is not None:
        return render_png(kept.payload)
    key = kept.png_key or kept.strokes_key
    assert key is not None
    try:
        data = resources().storage.get(key)
    except ObjectNotFound:
        raise NotFound("the stored drawing is gone", {"id": str(rid)}) from None
    except StorageError:
        log.exception("reading %s failed", key)
        raise ServiceUnavailable("object storage is unavailable", {"id": str(rid)}) from None
    if kept.png_key:
        return data
    try:
        document = segments.find(data, rid)
        if document is None:
            raise NotFound("the stored drawing is gone", {"id": str(rid)})
        return render_png(document["drawing"])
    except (ValueError, KeyError, TypeError):
        log.exception("stored strokes of %s are unreadable", rid)
        raise NotFound("the stored drawing is unreadable", {"id": str(rid)}) from None


def _decision() -> tuple[str, str | None, bool]:
    """The body: {"label": "cat"} (optionally "new_word": true) or {"discard": true}.
    Returns (action, label, new_word)."""
    if request.mimetype != "application/json":
        raise InvalidRequest("send the body as application/json", {"field": "body"})
    return parse_review_decision(read_body(request, resources().settings.max_body_bytes))


@bp.post("/<recognition_id>")
def decide(recognition_id: str) -> Response:
    rid = _parse_id(recognition_id)
    action, label, new_word = _decision()
    try:
        item = labelling.decide_review(
            resources().sessions, rid, label, actor=admin_actor(), new_word=new_word
        )
    except UnknownDoodle:
        raise NotFound("no such recognition", {"id": str(rid)}) from None
    except ReviewRefused as exc:
        raise Conflict(str(exc), {"id": str(rid), "action": action}) from None
    except WordRefused as exc:
        raise word_refused(exc) from None
    return jsonify(review_json(item))


def word_refused(exc: WordRefused) -> Unprocessable:
    """A label that is not a known word (or a rejected one): 422 with the suggestions."""
    return Unprocessable(str(exc), exc.details())
