"""`doodle data ...`: training data from the public Quick, Draw! dataset.

    doodle data import SOURCE... [--word W] [--limit N]

A SOURCE is a file, a folder (its *.ndjson and *.npy files) or an http(s) URL of ndjson
(raw or simplified) or .npy bitmaps; `services.datasets` says what becomes of each
drawing. Each source is one transaction. Prints one JSON line.
"""

from __future__ import annotations

import json

import click

from cli.context import open_connections


@click.group("data")
def data_group() -> None:
    """Training data: imports from the public Quick, Draw! dataset."""


@data_group.command("import")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--word",
    default=None,
    help="The word of .npy files (default: the file's name); for ndjson, import only it.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="At most N drawings a source."
)
def import_command(sources: tuple[str, ...], word: str | None, limit: int | None) -> None:
    """Import Quick, Draw! drawings (ndjson raw/simplified, .npy bitmaps) from files,
    folders or http(s) URLs as training data. Running it twice adds nothing twice."""
    # Loads numpy and PIL: only for this command, not for every `doodle` start.
    from services.datasets import BadSource, ImportFailed, import_sources

    with open_connections() as db:
        try:
            report = import_sources(db.sessions, sources, word=word, limit=limit)
        except BadSource as exc:
            raise click.BadParameter(str(exc), param_hint="SOURCE") from None
        except ImportFailed as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(report.as_dict()))
