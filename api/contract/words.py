"""The labels' vocabulary (`/v1/admin/words`): words reviewers proposed and admins'
decisions about them, declared once for the validators and /openapi.json."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from api.contract.requests import Body
from api.contract.responses import Answer, Timestamp

# The most words one list shows.
MAX_WORDS = 500
WORD_STATUSES = Literal["proposed", "confirmed", "rejected"]


class WordListQuery(Body):
    model_config = ConfigDict(strict=False)  # query strings are text: "50" is 50

    status: WORD_STATUSES | None = Field(
        default=None, description="proposed: waiting for an admin; leave it out for all"
    )
    limit: Annotated[int, Field(ge=1, le=MAX_WORDS)] = 100


class WordDecision(Body):
    decision: Literal["confirm", "reject"] = Field(
        description="confirm: labels may use the word, and its reviewer labels train; "
        "reject: no label may use it, and its reviewer labels never train"
    )


class WordEntry(Answer):
    word: str
    status: WORD_STATUSES
    proposed_by: str | None = Field(
        description='"reviewer:<token id>" or "admin:<token id>"; null when an admin '
        "confirmed or rejected a word nobody proposed"
    )
    proposed_at: Timestamp = Field(description="when it entered the table")
    decided_by: str | None = Field(description='"admin:<token id>"; null while proposed')
    decided_at: Timestamp | None
    doodles: int = Field(description="doodles whose label in force is a reviewer's of this word")


class WordList(Answer):
    words: list[WordEntry] = Field(description="oldest proposed first")


class WordDecided(Answer):
    word: WordEntry
    previous_status: WORD_STATUSES | None = Field(description="null: the word was not in the table")
