"""The admin's doodle grid (`/v1/admin/doodles`): its query, its bulk decisions and
their answers, declared once for the validators and /openapi.json."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from api.contract import limits
from api.contract.requests import Body, Label, NewWord, PlayerId, Word
from api.contract.responses import Answer, Timestamp

# The most doodles one bulk decision names: a full page of the grid.
MAX_BULK = limits.MAX_PAGE
LABEL_SOURCES = Literal["prompt", "model", "reviewer", "import", "none"]
REVIEW_STATES = Literal["none", "pending", "resolved"]
Confidence = Annotated[float, Field(ge=0.0, le=1.0)]


class DoodleListQuery(Body):
    """Filters of the grid; every one optional, all given ones must hold."""

    model_config = ConfigDict(strict=False)  # query strings are text: "50" is 50

    word: Word | None = Field(default=None, description="the prompt the player was shown")
    predicted: Word | None = Field(default=None, description="the model's top guess")
    label: Label | None = Field(
        default=None, description="the effective label (a reviewer's beats the rest)"
    )
    label_source: LABEL_SOURCES | None = Field(
        default=None, description="source of the effective label; none: no label"
    )
    review: REVIEW_STATES | None = Field(
        default=None, description="none: never queued nor reviewed; pending: in the queue"
    )
    min_confidence: Confidence | None = Field(
        default=None, description="at least (0..1); not above max_confidence"
    )
    max_confidence: Confidence | None = Field(default=None, description="at most (0..1)")
    since: AwareDatetime | None = Field(
        default=None,
        description="drawn at or after (ISO 8601 with a time zone); before until",
    )
    until: AwareDatetime | None = Field(
        default=None, description="drawn before (ISO 8601 with a time zone)"
    )
    model_version: Annotated[int, Field(ge=0, le=limits.MAX_VERSION_ID)] | None = Field(
        default=None, description="the version that recognised it"
    )
    player_id: PlayerId | None = None
    limit: Annotated[int, Field(ge=1, le=limits.MAX_PAGE)] = limits.DEFAULT_PAGE
    after: Annotated[str, StringConstraints(pattern=limits.CURSOR_PATTERN)] | None = Field(
        default=None,
        description="the `next` cursor of the previous page (leave it out for the first "
        "page); only cursors the list made are accepted",
    )

    @model_validator(mode="after")
    def _ranges(self) -> DoodleListQuery:
        if (
            self.min_confidence is not None
            and self.max_confidence is not None
            and self.min_confidence > self.max_confidence
        ):
            raise PydanticCustomError(
                "range", "min_confidence is above max_confidence", {"field": "min_confidence"}
            )
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise PydanticCustomError("range", "since is not before until", {"field": "since"})
        return self


Ids = Annotated[
    list[uuid.UUID],
    Field(min_length=1, max_length=MAX_BULK, description="the doodles; repeats count once"),
]


class LabelDoodles(Body):
    """Give every doodle the reviewer label `label`."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    ids: Ids
    action: Literal["label"]
    label: Label
    new_word: NewWord = False


class DecideDoodles(Body):
    """`confirm`: give each doodle its current label (its effective label, else its
    prompt word) as a reviewer's; `discard`: keep them out of training."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    ids: Ids
    action: Literal["confirm", "discard"]
    new_word: NewWord = Field(
        default=False,
        description="confirm: propose the doodles' current labels that are not known words",
    )


def _decisions_kind(body: Any) -> str:
    # The action picks the model, so that an error names that model's field.
    action = body.get("action") if isinstance(body, dict) else getattr(body, "action", None)
    return "LabelDoodles" if action == "label" else "DecideDoodles"


DoodleDecisions = Annotated[
    Annotated[LabelDoodles, Tag("LabelDoodles")] | Annotated[DecideDoodles, Tag("DecideDoodles")],
    Discriminator(_decisions_kind),
]


class Doodle(Answer):
    id: str = Field(json_schema_extra={"format": "uuid"})
    created_at: Timestamp
    word: str | None = Field(description="the prompt shown")
    predicted: str | None = Field(description="the model's top guess")
    confidence: float | None
    label: str | None = Field(description="the effective label")
    label_source: Literal["prompt", "model", "reviewer", "import"] | None
    review_status: REVIEW_STATES
    model_version: int | None
    player_id: str | None
    drawing_url: str = Field(description="the drawing as PNG")


class DoodlePage(Answer):
    doodles: list[Doodle] = Field(description="newest first")
    next: str | None = Field(description="pass as `after` for the next page; null on the last")


class Decided(Answer):
    id: str = Field(json_schema_extra={"format": "uuid"})
    decision: Literal["label", "discard"]
    label: str | None = Field(description="the reviewer label recorded; null for a discard")


class DecisionsResult(Answer):
    action: Literal["label", "confirm", "discard"]
    decided: list[Decided] = Field(description="in the order asked, one per distinct id")
