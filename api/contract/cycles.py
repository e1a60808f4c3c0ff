"""Flywheel cycles (`/v1/admin/cycles`): asking for one, and what a cycle looks like,
declared once for the validators and /openapi.json."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from api.contract import limits
from api.contract.requests import Body
from api.contract.responses import Answer, Timestamp

# The most cycles one list shows.
MAX_CYCLES = 100


class CycleRequest(Body):
    reason: Annotated[
        str,
        StringConstraints(max_length=limits.MAX_REASON_LENGTH, pattern=limits.NO_NUL_PATTERN),
    ] = Field(default="", description="why, for the cycle's record and the audit log")


class CycleListQuery(Body):
    model_config = ConfigDict(strict=False)  # query strings are text: "5" is 5

    limit: Annotated[int, Field(ge=1, le=MAX_CYCLES)] = 20


class Cycle(Answer):
    id: int
    status: str = Field(
        description="requested, running, then promoted, rejected, skipped, failed, or "
        "abandoned (its flow stopped before the end)"
    )
    requested_by: str = Field(description='"admin:<token id>", "trigger", "schedule", "cli"')
    reason: str
    requested_at: Timestamp
    started_at: Timestamp | None = Field(description="when a flow took it; null while requested")
    finished_at: Timestamp | None
    stage: str | None = Field(description="while running: relabel, finetune or evaluate")
    candidate_version: int | None
    promoted: bool | None = Field(description="null until it finished")
    summary: str = Field(description="one line on how it went")
    flow_run_id: str | None = Field(description="its Prefect flow run")


class CycleAnswer(Answer):
    cycle: Cycle
    existing: bool = Field(
        description="true: a cycle was requested or running already, and this is that one"
    )


class CycleList(Answer):
    cycles: list[Cycle] = Field(description="newest first")
    active: int | None = Field(description="the cycle requested or running, if any")
