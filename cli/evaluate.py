"""`doodle eval`: score a model version on Quick, Draw! drawings, as the worker sees them."""

from __future__ import annotations

import itertools
import json

import click

from cli.context import open_connections
from db.registry import Alias


@click.command("eval")
@click.option("--drawings", "source", required=True, help="ndjson file or URL (raw or simplified).")
@click.option(
    "--model",
    "model_ref",
    default=Alias.PRODUCTION.value,
    show_default=True,
    help="An alias or a version number.",
)
@click.option("--limit", type=int, default=None, help="Score only the first N drawings.")
def eval_command(source: str, model_ref: str, limit: int | None) -> None:
    """Print one JSON line: n, top1, top3, map3 and per-word top-1."""
    # These load torch: only for this command.
    from ml.datasets import read_ndjson
    from services import artifacts
    from services.errors import NoRegistry, UnknownVersion
    from services.evaluation import score_drawings

    with open_connections() as db:
        try:
            ref = (
                artifacts.version_ref(db.sessions, int(model_ref))
                if model_ref.isdigit()
                else artifacts.alias_ref(db.sessions, model_ref)
            )
        except NoRegistry:
            raise click.ClickException(
                "the database holds no models yet: run `make run` once (or `doodle db "
                "upgrade` and `doodle models import`)"
            ) from None
        except UnknownVersion:
            ref = None
        if ref is None:
            raise click.ClickException(f"no model version {model_ref!r}")
        model = artifacts.load(db.storage, ref)
    report = score_drawings(model, ref.classes, itertools.islice(read_ndjson(source), limit))
    if not report["n"]:
        raise click.ClickException(f"no drawings in {source}")
    click.echo(json.dumps({"model_version": ref.version_id, **report}))
