"""`doodle eval`: score a model version on Quick, Draw! drawings, as the worker sees them."""

from __future__ import annotations

import itertools
import json

import click

from cli.context import resolved_settings
from core.storage import open_storage
from db import registry
from db.session import make_engine, make_session_factory

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
    from ml.artifacts import load_verified
    from ml.datasets import read_ndjson
    from ml.evaluate import score
    from ml.predict import Predictor
    from ml.raster import rasterize_batch
    from ml.strokes import to_simplified

    with resolved_settings(redis=False) as settings:
        engine = make_engine(settings.db_url)
        try:
            with make_session_factory(engine)() as s:
                version = (
                    registry.get_version(s, int(model_ref))
                    if model_ref.isdigit()
                    else registry.get_alias(s, model_ref)
                )
                if version is None:
                    raise click.ClickException(f"no model version {model_ref!r}")
                classes, key, checksum, version_id = (
                    list(version.classes),
                    version.artifact_key,
                    version.checksum,
                    version.id,
                )
        finally:
            engine.dispose()
        model = load_verified(open_storage(settings.object_store_url), key, checksum, classes)
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
