"""The doodles grid (every listed doodle, filtered), the review queue, thumbnails and the
decisions the keyboard sends (one doodle or a selection)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify, render_template, request

from api import reviews as review_api
from api.contract.doodles import DecideDoodles, DoodleDecisions, LabelDoodles
from api.contract.parsing import Parser, read_body
from api.doodles import LIST_QUERY, filters_of
from api.errors import Conflict, InvalidRequest, NotFound
from api.resources import resources
from api.reviews import word_refused
from api.web import bp, web_session
from db import doodle_listing, review_listing
from db.doodle_listing import DoodleFilters, ReviewState
from db.models import LabelSource
from services import labels as labelling
from services.vocabulary import WordRefused

PAGE_SIZE = 48
# The API's bulk decision's contract (api.contract.doodles), so the page refuses what
# the API refuses, with the same answers.
_DECISIONS: Parser[LabelDoodles | DecideDoodles] = Parser(DoodleDecisions)


@dataclass(frozen=True)
class Card:
    """One thumbnail of the grid, whichever list it comes from."""

    id: uuid.UUID
    word: str | None
    predicted: str | None
    confidence: float | None
    label: str | None
    label_source: str | None
    review: str
    note: str | None = None  # why the doodle is in the review queue


# The filter form's fields, by the name the grid's API query gives each.
_FORM_FIELDS = {
    "word": "word",
    "predicted": "predicted",
    "label": "label",
    "source": "label_source",
    "review": "review",
    "min_confidence": "min_confidence",
    "max_confidence": "max_confidence",
    "version": "model_version",
}


def _filters() -> DoodleFilters:
    """The form's filters, checked as `GET /v1/admin/doodles` checks them (a blank field
    filters nothing)."""
    given = {key: request.args.get(field, "").strip() for field, key in _FORM_FIELDS.items()}
    return filters_of(LIST_QUERY.python({key: value for key, value in given.items() if value}))


@bp.get("/doodles")
def doodles() -> str:
    filters = _filters()
    after = request.args.get("after") or None
    with resources().sessions() as s:
        try:
            page = doodle_listing.list_doodles(s, filters, after=after, limit=PAGE_SIZE)
        except doodle_listing.InvalidCursor as exc:
            raise InvalidRequest(str(exc), {"field": "after"}) from None
    cards = [
        Card(
            d.id,
            d.word,
            d.predicted,
            d.confidence,
            d.label,
            None if d.label_source is None else d.label_source.value,
            d.review_status.value,
        )
        for d in page.items
    ]
    args = {k: v for k, v in request.args.items() if k != "after" and v}
    return render_template(
        "doodles.html",
        cards=cards,
        next_cursor=page.next_cursor,
        args=args,
        sources=[s.value for s in LabelSource] + [doodle_listing.NO_LABEL],
        reviews=[r.value for r in ReviewState],
    )


@bp.get("/reviews")
def review_queue() -> str:
    after = request.args.get("after") or None
    with resources().sessions() as s:
        try:
            page = review_listing.list_reviews(s, limit=PAGE_SIZE, after=after)
        except review_listing.InvalidCursor as exc:
            raise InvalidRequest(str(exc), {"field": "after"}) from None
        # Only doodles the grid may show: kept, finished, their player not being erased.
        shown = doodle_listing.listed_ids(s, [item.recognition_id for item in page.items])
    cards = [
        Card(
            item.recognition_id,
            item.word,
            item.prediction_label,
            item.prediction_confidence,
            item.reviewer_label,
            "reviewer" if item.reviewer_label else None,
            item.status.value,
            item.reason,
        )
        for item in page.items
        if item.recognition_id in shown
    ]
    return render_template("reviews.html", cards=cards, next_cursor=page.next_cursor)


@bp.get("/doodles/<recognition_id>.png")
def thumbnail(recognition_id: str) -> Response:
    rid = _listed_or_404([recognition_id])[0]
    # The review API's drawing route, called as a function: the same PNG, same headers.
    return review_api.drawing(str(rid))


def _uuid(raw: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound("no such doodle", {"id": str(raw)[:64]}) from None


def _listed_or_404(raw_ids: list[Any]) -> list[uuid.UUID]:
    """The ids, if the grid may show every one of them (erased players' doodles: 404)."""
    ids = [_uuid(raw) for raw in raw_ids]
    with resources().sessions() as s:
        listed = doodle_listing.listed_ids(s, ids)
    missing = [str(i) for i in ids if i not in listed]
    if missing:
        raise NotFound("no such doodle", {"id": missing[0]})
    return ids


def _decision_body() -> LabelDoodles | DecideDoodles:
    """The body, checked as `POST /v1/admin/doodles/decisions` checks it: one contract, one
    parser, the same 400s (and 413 or 400 for a body too long or broken)."""
    if request.mimetype != "application/json":
        raise InvalidRequest("send the body as application/json", {"field": "body"})
    return _DECISIONS.json(read_body(request, resources().settings.max_body_bytes))


@bp.post("/doodles/decisions")
def decide() -> Response:
    """{"ids": [...], "action": "confirm" | "discard" | "label", "label": "cat",
    "new_word": false}: the API's bulk decision (services.labels.decide_many), all or
    nothing, an audit row a doodle.

    confirm keeps each doodle's current label (its prompt word when it has none); discard
    drops it from training; label relabels it. 404 names ids the grid does not list (an
    erased player's), 409 the doodles that cannot take the decision, 422 a label that is
    not a known word (with suggestions): the page then asks whether to propose it as a
    new word, and sends the decision again with "new_word": true."""
    body = _decision_body()
    label = body.label if isinstance(body, LabelDoodles) else None
    try:
        decided = labelling.decide_many(
            resources().sessions,
            body.ids,
            body.action,
            label,
            actor=web_session().actor,
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
            raise NotFound(str(exc), details) from None
        raise Conflict(str(exc), details) from None
    results = {
        str(d.id): {
            "ok": True,
            "decision": "discard" if d.label is None else "label",
            "label": d.label,
        }
        for d in decided
    }
    return jsonify({"action": body.action, "results": results, "failed": 0})
