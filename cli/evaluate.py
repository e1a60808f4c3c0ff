"""`doodle eval`: score a model version on Quick, Draw! drawings, as the worker sees them.

Sources are ndjson (raw or simplified strokes: rasterised as a worker does) or the
dataset's `.npy` 28x28 bitmaps (scored as they are; the word is the file's name or
`--word`). Several sources are scored together, e.g. one `.npy` per word.
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import click

from cli.context import open_connections
from db.registry import Alias

if TYPE_CHECKING:
    import numpy as np

BATCH = 256


def npy_word(source: str, word: str | None) -> str | None:
    """The word of a `.npy` source (`word`, else the file's name), None for ndjson."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(source).path) if "://" in source else source
    name = PurePosixPath(path)
    if name.suffix.lower() != ".npy":
        return None
    return word or name.stem


def labelled_bitmaps(
    sources: tuple[str, ...], word: str | None, limit: int | None
) -> Iterator[tuple[np.ndarray, list[str]]]:
    """(bitmaps, words) a source at a time, the first `limit` drawings in all."""
    from ml.datasets import read_bitmaps, read_ndjson
    from ml.raster import rasterize_batch
    from ml.strokes import to_simplified

    left = limit
    for source in sources:
        if left is not None and left <= 0:
            return
        npy = npy_word(source, word)
        if npy is not None:
            bitmaps = read_bitmaps(source, npy)[:left]
            words = [npy] * len(bitmaps)
        else:
            drawings = list(itertools.islice(read_ndjson(source), left))
            bitmaps = rasterize_batch(to_simplified(d.strokes) for d in drawings)
            words = [d.word for d in drawings]
        if left is not None:
            left -= len(words)
        yield bitmaps, words


@click.command("eval")
@click.option(
    "--drawings",
    "sources",
    required=True,
    multiple=True,
    help="ndjson (raw or simplified) or .npy bitmaps, a file or URL; repeat to score several.",
)
@click.option("--word", default=None, help="The word of .npy sources (default: the file's name).")
@click.option(
    "--model",
    "model_ref",
    default=Alias.PRODUCTION.value,
    show_default=True,
    help="An alias or a version number.",
)
@click.option("--limit", type=int, default=None, help="Score only the first N drawings.")
def eval_command(
    sources: tuple[str, ...], word: str | None, model_ref: str, limit: int | None
) -> None:
    """Print one JSON line: n, top1, top3, map3 and per-word top-1."""
    # These load torch: only for this command.
    from ml.evaluate import score
    from ml.predict import Prediction, Predictor
    from services import artifacts
    from services.errors import NoRegistry, UnknownVersion

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
    predictor = Predictor(model, ref.classes)
    predictions: list[Prediction] = []
    truths: list[str] = []
    try:
        for bitmaps, words in labelled_bitmaps(sources, word, limit):
            for start in range(0, len(bitmaps), BATCH):  # bounded memory for big files
                predictions.extend(predictor.predict(bitmaps[start : start + BATCH]))
            truths.extend(words)
    except ValueError as exc:  # a malformed line or array, named by the reader
        raise click.ClickException(str(exc)) from None
    report = score(predictions, truths)
    if not report["n"]:
        raise click.ClickException(f"no drawings in {', '.join(sources)}")
    click.echo(json.dumps({"model_version": ref.version_id, **report}))
