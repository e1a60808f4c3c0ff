"""`/v1/admin/words`: the labels' vocabulary beside the production model's classes and
the imported dataset's words. Reviewers may read it (and propose words by labelling with
`"new_word": true`); only admins confirm or reject a word.

A reviewer label of a word proposed and not confirmed (or rejected) does not train.
Decisions are audited (word.confirm, word.reject) with `admin:<token id>`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import Role, admin_actor, protect_admin_blueprint, requires_role
from api.contract.parsing import Parser, read_body
from api.contract.words import WordDecision, WordListQuery
from api.errors import Conflict, InvalidRequest
from api.resources import resources
from db.labels import InvalidLabel
from db.vocabulary import WordInfo
from services import vocabulary

bp = Blueprint("admin_words", __name__, url_prefix="/v1/admin/words")
protect_admin_blueprint(bp, Role.REVIEWER)

_LIST: Parser[WordListQuery] = Parser(WordListQuery)
_DECISION: Parser[WordDecision] = Parser(WordDecision)


def word_json(w: WordInfo) -> dict[str, Any]:
    return {
        "word": w.word,
        "status": w.status.value,
        "proposed_by": w.proposed_by,
        "proposed_at": w.proposed_at.isoformat(),
        "decided_by": w.decided_by,
        "decided_at": None if w.decided_at is None else w.decided_at.isoformat(),
        "doodles": w.doodles,
    }


@bp.get("")
def list_words() -> Response:
    query = _LIST.python(request.args.to_dict())
    words = vocabulary.list_words(resources().sessions, status=query.status, limit=query.limit)
    return jsonify({"words": [word_json(w) for w in words]})


@bp.post("/<word>")
@requires_role(Role.ADMIN)
def decide_word(word: str) -> Response:
    if request.mimetype != "application/json":
        raise InvalidRequest("send the body as application/json", {"field": "body"})
    body = _DECISION.json(read_body(request, resources().settings.max_body_bytes))
    try:
        info, before = vocabulary.decide_word(
            resources().sessions, word, body.decision, actor=admin_actor()
        )
    except InvalidLabel as exc:
        raise InvalidRequest(str(exc), {"field": "word", "reason": "not_a_word"}) from None
    except vocabulary.WordConflict as exc:
        raise Conflict(str(exc), {"word": word[:64], "decision": body.decision}) from None
    return jsonify(
        {"word": word_json(info), "previous_status": None if before is None else before.value}
    )
