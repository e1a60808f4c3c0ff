"""The `doodle` command: one entry point for every process and chore."""

from __future__ import annotations

import click

from cli.context import resolved_settings
from cli.data import data_group
from cli.dev import run_command
from cli.evaluate import eval_command
from cli.flows import flows_group
from cli.models import models_group
from cli.players import players_group
from cli.services import api_command, beat_command, sweep_command, worker_command
from core.logs import configure_logging
from core.settings import ConfigError


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            # A variable that cannot work stops the command, naming it: no traceback.
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands)
def cli() -> None:
    """Doodle flywheel: recognise Quick, Draw! doodles and learn from them."""
    configure_logging()


@cli.group("db")
def db_group() -> None:
    """Database schema migrations."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from db import migrate

    with resolved_settings(redis=False) as settings:
        migrate.upgrade(settings.db_url, revision)
        click.echo(f"database at {migrate.current(settings.db_url)}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. base)."""
    from db import migrate

    with resolved_settings(redis=False) as settings:
        migrate.downgrade(settings.db_url, revision)
        click.echo(f"database at {migrate.current(settings.db_url)}")


@db_group.command("current")
def db_current() -> None:
    """Print the database's revision."""
    from db import migrate

    with resolved_settings(redis=False) as settings:
        click.echo(migrate.current(settings.db_url) or "empty")


cli.add_command(run_command)
cli.add_command(api_command)
cli.add_command(worker_command)
cli.add_command(beat_command)
cli.add_command(sweep_command)
cli.add_command(models_group)
cli.add_command(eval_command)
cli.add_command(data_group)
cli.add_command(flows_group)
cli.add_command(players_group)

if __name__ == "__main__":
    cli()
