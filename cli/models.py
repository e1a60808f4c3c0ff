"""`doodle models ...`: the model registry from the command line."""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

import click
from sqlalchemy.orm import Session

from cli.context import open_connections, resolved_settings
from core import keys
from core.settings import Settings
from db import registry
from db.connections import Connections


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def import_model(
    settings: Settings,
    weights: bytes,
    classes: list[str],
    *,
    alias: str | None,
    source: str,
    if_missing: bool = False,
) -> dict[str, object]:
    """Register weights as a new model version (artifact stored, checksum recorded)."""
    from ml.network import load_model  # torch only for the commands that need it

    if len(set(classes)) != len(classes) or not all(classes):
        raise click.BadParameter(
            "class names must be non-empty and distinct", param_hint="--classes"
        )
    connections = Connections(settings)
    sessions = connections.sessions
    try:
        if if_missing and alias:
            with sessions() as s:
                existing = registry.get_alias(s, alias)
                if existing is not None:
                    return {"version": existing.id, "alias": alias, "imported": False}
        try:
            load_model(weights, len(classes))  # refuse weights that do not fit the classes
        except Exception as exc:
            raise click.ClickException(
                f"weights do not load as a {len(classes)}-class network: {exc}"
            ) from exc
        checksum = hashlib.sha256(weights).hexdigest()
        key = keys.model_artifact_key(checksum)
        connections.storage.put(key, weights, "application/octet-stream")
        with sessions.begin() as s:
            version = registry.register_model_version(
                s, classes=classes, artifact_key=key, checksum=checksum, source=source
            )
            if alias:
                registry.move_alias(s, alias, version.id, actor=_actor(), reason=f"import {source}")
            return {"version": version.id, "alias": alias, "imported": True, "checksum": checksum}
    finally:
        connections.close()


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
    names = [c.strip() for c in classes.split(",")]
    with resolved_settings(redis=False) as settings:
        result = import_model(
            settings, path.read_bytes(), names, alias=alias, source=str(path), if_missing=if_missing
        )
    click.echo(json.dumps(result))


@models_group.command("list")
def list_command() -> None:
    """One JSON line per version, newest first, with its aliases."""
    with open_connections() as db, db.sessions() as s:
        aliases = registry.aliases_of(s)
        for v in registry.list_versions(s):
            line = {
                "version": v.id,
                "aliases": aliases.get(v.id, []),
                "classes": len(v.classes),
                "parent": v.parent_id,
                "created_at": v.created_at.isoformat(),
                "source": v.source,
                "metrics": v.metrics,
            }
            click.echo(json.dumps(line))


def _move_line(s: Session, previous: int | None, version: int) -> dict[str, object]:
    """What a promote or rollback did; `history_id` is the alias history row it wrote."""
    move = registry.latest_move(s, registry.PRODUCTION) if previous != version else None
    return {
        "alias": registry.PRODUCTION,
        "from": previous if move is None else move.from_version_id,
        "to": version,
        "moved": move is not None,
        "history_id": None if move is None else move.id,
    }


def _production_id(s: Session) -> int | None:
    current = registry.get_alias(s, registry.PRODUCTION)
    return None if current is None else current.id


@models_group.command("promote")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why; kept in the alias history and audit log.")
def promote_command(version: int, reason: str) -> None:
    """Point the production alias at VERSION (workers switch within seconds)."""
    with open_connections() as db, db.sessions.begin() as s:
        previous = _production_id(s)
        try:
            registry.promote(s, version, actor=_actor(), reason=reason)
        except registry.UnknownModelVersion as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps(_move_line(s, previous, version)))


@models_group.command("rollback")
@click.option("--reason", default="", help="Why; kept in the alias history and audit log.")
def rollback_command(reason: str) -> None:
    """Move production back to the previous production version.

    Each call undoes one more move: two rollbacks after promoting 2 then 3 end at 1.
    """
    with open_connections() as db, db.sessions.begin() as s:
        previous = _production_id(s)
        try:
            version = registry.rollback(s, actor=_actor(), reason=reason)
        except registry.NothingToRollBack as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps(_move_line(s, previous, version.id)))


@models_group.command("history")
@click.option("--alias", default=registry.PRODUCTION, show_default=True)
def history_command(alias: str) -> None:
    """One JSON line per move of ALIAS, newest first: who, when, from which version."""
    with open_connections() as db, db.sessions() as s:
        for move in registry.alias_history(s, alias):
            click.echo(json.dumps(registry.move_as_dict(move)))
