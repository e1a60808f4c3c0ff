"""`doodle players ...`: a player's data rights from the command line (support staff)."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click
import redis

from cli.context import open_connections
from services import erasure, players
from services.errors import UnknownPlayer


@click.group("players")
def players_group() -> None:
    """Players' data: export (Art. 15 and 20) and erasure (Art. 17)."""


@players_group.command("export")
@click.argument("player_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the JSON document here (default: standard output).",
)
def export_command(player_id: str, out: Path | None) -> None:
    """Everything held about PLAYER_ID, as one JSON document (the same as the API's)."""
    with open_connections() as db:
        try:
            chunks = players.export(db.sessions, db.storage, player_id)
        except UnknownPlayer as exc:
            raise click.ClickException(str(exc)) from None
        if out is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        # Written beside, then moved into place: a failure midway leaves no partial file.
        partial = out.with_name(out.name + ".partial")
        try:
            with partial.open("wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
    click.echo(f"exported player to {out}", err=True)


@players_group.command("erase")
@click.argument("player_id")
@click.option(
    "--wait", is_flag=True, help="Do the erasure now, in this process, and print the receipt."
)
def erase_command(player_id: str, wait: bool) -> None:
    """Erase PLAYER_ID from every store (Art. 17): prints the request as JSON (with
    --wait, the receipt). Asking again answers the same request, or the receipt."""
    with open_connections(redis=True) as db:
        client = redis.Redis.from_url(db.settings.broker_url)
        try:
            state = erasure.erase_player(
                db, client, player_id, f"cli:{getpass.getuser()}", now=wait
            )
        except UnknownPlayer as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            client.close()
    click.echo(json.dumps(state.document(), indent=2))
