"""`doodle eval`: score a model version on Quick, Draw! drawings, as the worker sees them."""

from __future__ import annotations

import itertools
import json

import click
from sqlalchemy.exc import ProgrammingError

from cli.context import resolved_settings

BATCH = 256


@click.command("eval")
@click.option("--drawings", "source", required=True, help="ndjson file or URL (raw or simplified).")
@click.option(
    "--model",
    "model_ref",
    default="production",
    show_default=True,
    help="An alias or a version number.",
)
@click.option("--limit", type=int, default=None, help="Score only the first N drawings.")
def eval_command(source: str, model_ref: str, limit: int | None) -> None:
    """Print one JSON line: n, top1, top3, map3 and per-word top-1."""
    from flows.context import FlowContext  # loads torch: only for this command
    from ml.datasets import read_ndjson
    from ml.evaluate import score
    from ml.predict import Predictor
    from ml.raster import rasterize_batch
    from ml.strokes import to_simplified

    with resolved_settings(redis=False) as settings:
        versions = FlowContext(settings)
        try:
            try:
                version_id = (
                    int(model_ref) if model_ref.isdigit() else versions.alias_version(model_ref)
                )
            except ProgrammingError:  # no tables: a database never migrated
                raise click.ClickException(
                    "the database holds no models yet: run `make run` once (or `doodle db "
                    "upgrade` and `doodle models import`)"
                ) from None
            if version_id is None:
                raise click.ClickException(f"no model version {model_ref!r}")
            try:
                model, classes = versions.load_version(version_id)
            except LookupError as exc:
                raise click.ClickException(f"no model version {model_ref!r}") from exc
        finally:
            versions.close()
    predictor = Predictor(model, classes)
    predictions: list = []
    truths: list[str] = []
    drawings = itertools.islice(read_ndjson(source), limit)
    while batch := list(itertools.islice(drawings, BATCH)):
        bitmaps = rasterize_batch(to_simplified(d.strokes) for d in batch)
        predictions.extend(predictor.predict(bitmaps))
        truths.extend(d.word for d in batch)
    if not truths:
        raise click.ClickException(f"no drawings in {source}")
    click.echo(json.dumps({"model_version": version_id, **score(predictions, truths)}))
