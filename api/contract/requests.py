"""Request bodies and parameters, declared once: pydantic validates them and the OpenAPI
document is generated from them. Each limit comes from `api.contract.limits`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from api.contract import limits
from api.contract.drawing import Strokes
from db import labels


class Body(BaseModel):
    """Strict JSON: no coercion ("1" is not 1), no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _lower_within(max_length: int, field: str) -> AfterValidator:
    def check(value: str) -> str:
        value = value.strip().lower()
        if not value:
            raise PydanticCustomError("blank", f"{field} must not be blank")
        # Lower-casing can lengthen a word ("İ" -> "i̇"): the column holds the lower case.
        if len(value) > max_length:
            raise PydanticCustomError(
                "too_long_lowercased", f"{field} is longer than {max_length} once lower-cased"
            )
        return value

    return AfterValidator(check)


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "must not be blank")
    return value


Word = Annotated[
    str,
    StringConstraints(min_length=1, max_length=limits.MAX_WORD_LENGTH, pattern=limits.TEXT_PATTERN),
    _lower_within(limits.MAX_WORD_LENGTH, "word"),
    Field(
        description="The prompt the player was shown. No control characters; stored "
        f"stripped and lower-cased, at most {limits.MAX_WORD_LENGTH} characters then.",
        examples=["star"],
    ),
]
PlayerId = Annotated[
    str,
    StringConstraints(pattern=limits.PLAYER_ID_PATTERN),
    Field(
        description="The id POST /v1/players issued. The request must carry the player's "
        "secret (X-Player-Secret header), else 401.",
        examples=["p_0XqzM2JwHcP8y5Qx4u6v1A"],
    ),
]
ConsentVersion = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=limits.MAX_CONSENT_VERSION_LENGTH, pattern=limits.TEXT_PATTERN
    ),
    AfterValidator(_not_blank),
    Field(description="Version of the consent text the player accepted (not blank)."),
]


class Consent(Body):
    """What the player allowed: `train` needs `store`; consent needs a `player_id`."""

    store: bool = Field(description="keep the doodle")
    train: bool = Field(description="use it to train (needs store)")
    version: ConsentVersion

    @model_validator(mode="after")
    def _train_needs_store(self) -> Consent:
        if self.train and not self.store:
            raise PydanticCustomError(
                "consent_rule", "consent.train needs consent.store: a doodle not kept cannot train"
            )
        return self


class RecognitionRequest(Body):
    drawing: Strokes
    word: Word | None = None
    player_id: PlayerId | None = None
    consent: Consent | None = Field(
        default=None,
        description="Without it the consent in force is used (none: nothing is kept). "
        "Needs a player_id, and then replaces the consent in force when it differs.",
    )

    @model_validator(mode="after")
    def _consent_needs_player(self) -> RecognitionRequest:
        if self.consent is not None and self.player_id is None:
            raise PydanticCustomError(
                "consent_rule",
                "consent needs a player_id, so the player can later withdraw it",
                {"field": "player_id"},
            )
        return self


class PlayerRequest(Body):
    """A new player (POST /v1/players); the body may be left out."""

    consent: Consent | None = Field(
        default=None,
        description="The player's first consent grant, as PUT /v1/players/{id}/consent "
        "takes it; without it nothing of theirs is kept until they grant one.",
    )


class GuessRequest(Body):
    drawing: Strokes


class PngQuery(Body):
    """The query string of a PNG recognition (the body is the image)."""

    word: Word | None = None
    player_id: PlayerId | None = None


def _word(value: str) -> str:
    # db.labels' rule (letters of any script, single spaces, hyphens or apostrophes
    # between them) is more than the pattern JSON Schema can say.
    try:
        return labels.normalize_word(value)
    except labels.InvalidLabel as exc:
        raise PydanticCustomError("label", str(exc)) from None


Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=limits.LABEL_LENGTH, pattern=limits.TEXT_PATTERN),
    AfterValidator(_word),
    Field(
        description="A word: letters of any script, with single spaces, hyphens or "
        "apostrophes between them (t-shirt, ice cream). Stored normalised (Unicode NFKC, "
        f"lower case, trimmed, inner spaces collapsed), at most {limits.LABEL_LENGTH} "
        "characters then. It must be a known word (a class of the production model, a "
        "word of the imported dataset, or one an admin confirmed) unless `new_word` "
        "proposes it: else 422 with suggestions."
    ),
]
NewWord = Annotated[
    bool,
    Field(
        strict=True,  # "yes" or 1 is not true: the grid's lax bodies would take them
        description="propose the label as a new word: it is recorded, and trains once an "
        "admin confirms the word (POST /v1/admin/words/{word}); a known word needs none",
    ),
]


class LabelDecision(Body):
    label: Label
    new_word: NewWord = False


class DiscardDecision(Body):
    discard: Literal[True]


def _decision_kind(body: Any) -> str:
    # Which key the body holds picks the model, so an error names that model's field.
    return "DiscardDecision" if isinstance(body, dict) and "discard" in body else "LabelDecision"


ReviewDecision = Annotated[
    Annotated[LabelDecision, Tag("LabelDecision")]
    | Annotated[DiscardDecision, Tag("DiscardDecision")],
    Discriminator(_decision_kind),
    Field(description='{"label": "<word>"} labels the doodle; {"discard": true} discards it.'),
]


class MoveRequest(Body):
    reason: Annotated[
        str,
        StringConstraints(max_length=limits.MAX_REASON_LENGTH, pattern=limits.NO_NUL_PATTERN),
    ] = ""


class ReviewListQuery(Body):
    model_config = ConfigDict(strict=False)  # query strings are text: "50" is 50

    status: Literal["pending", "resolved"] = "pending"
    limit: Annotated[int, Field(ge=1, le=limits.MAX_PAGE)] = limits.DEFAULT_PAGE
    after: Annotated[str, StringConstraints(pattern=limits.CURSOR_PATTERN)] | None = Field(
        default=None,
        description="the `next` cursor of the previous page (leave it out for the first "
        "page); only cursors the list made are accepted",
    )
