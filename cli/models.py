"""`doodle models ...`: the model registry from the command line."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from cli.context import open_connections
from db.registry import Alias
from services import registry
from services.errors import InvalidClasses, InvalidModel, NothingToRollBack, UnknownVersion


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@click.group("models")
def models_group() -> None:
    """Model versions and their aliases."""


@models_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--classes", required=True, help="Comma-separated class names, in output order.")
@click.option("--alias", default=None, help="Point this alias (e.g. production) at it.")
@click.option("--if-missing", is_flag=True, help="Do nothing if the alias already exists.")
def import_command(path: Path, classes: str, alias: str | None, if_missing: bool) -> None:
    """Register a PyTorch state_dict at PATH as a new model version."""
    from services.models import import_model  # loads torch: only for this command

    names = [c.strip() for c in classes.split(",")]
    with open_connections() as db:
        try:
            result = import_model(
                db.sessions,
                db.storage,
                path.read_bytes(),
                names,
                alias=alias,
                source=str(path),
                actor=_actor(),
                if_missing=if_missing,
            )
        except InvalidClasses as exc:
            raise click.BadParameter(str(exc), param_hint="--classes") from None
        except InvalidModel as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result.as_dict()))


@models_group.command("list")
def list_command() -> None:
    """One JSON line per version, newest first, with its aliases."""
    with open_connections() as db:
        versions = registry.list_versions(db.sessions)
    for v in versions:
        line = {
            "version": v.id,
            "aliases": v.aliases,
            "classes": len(v.classes),
            "parent": v.parent_id,
            "created_at": v.created_at.isoformat(),
            "source": v.source,
            "metrics": v.metrics,
        }
        click.echo(json.dumps(line))


def _move_line(move: registry.AliasMove) -> dict[str, object]:
    """What a promote or rollback did; `history_id` is the alias history row it wrote."""
    return {
        "alias": move.alias,
        "from": move.previous,
        "to": move.version.id,
        "moved": move.moved,
        "history_id": None if move.move is None else move.move["id"],
    }


@models_group.command("promote")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why; kept in the alias history and audit log.")
def promote_command(version: int, reason: str) -> None:
    """Point the production alias at VERSION (workers switch within seconds)."""
    with open_connections() as db:
        try:
            move = registry.promote(db.sessions, version, actor=_actor(), reason=reason)
        except UnknownVersion as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(_move_line(move)))


@models_group.command("rollback")
@click.option("--reason", default="", help="Why; kept in the alias history and audit log.")
def rollback_command(reason: str) -> None:
    """Move production back to the previous production version.

    Each call undoes one more move: two rollbacks after promoting 2 then 3 end at 1.
    """
    with open_connections() as db:
        try:
            move = registry.rollback(db.sessions, actor=_actor(), reason=reason)
        except NothingToRollBack as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(_move_line(move)))


@models_group.command("history")
@click.option("--alias", default=Alias.PRODUCTION.value, show_default=True)
def history_command(alias: str) -> None:
    """One JSON line per move of ALIAS, newest first: who, when, from which version."""
    with open_connections() as db:
        moves = registry.alias_history(db.sessions, alias)
    for move in moves:
        click.echo(json.dumps(move))
