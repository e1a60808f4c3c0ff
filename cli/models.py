"""`doodle models ...`: the model registry from the command line."""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

import click

from cli.context import resolved_settings
from core import keys
from core.settings import Settings
from core.storage import open_storage
from db import registry
from db.session import make_engine, make_session_factory


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
    engine = make_engine(settings.db_url)
    try:
        sessions = make_session_factory(engine)
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
        open_storage(settings.object_store_url).put(key, weights, "application/octet-stream")
        with sessions.begin() as s:
            version = registry.register_model_version(
                s, classes=classes, artifact_key=key, checksum=checksum, source=source
            )
            if alias:
                registry.move_alias(s, alias, version.id, actor=_actor(), reason=f"import {source}")
            return {"version": version.id, "alias": alias, "imported": True, "checksum": checksum}
    finally:
        engine.dispose()


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
    with resolved_settings(redis=False) as settings:
        engine = make_engine(settings.db_url)
        try:
            with make_session_factory(engine)() as s:
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
        finally:
            engine.dispose()
