"""The `policy-timeline` command line."""

from __future__ import annotations

import sys

import click

from events import EventLogError, SQLiteEventStore

from .config import load_config


@click.group()
@click.option("--db", envvar="POLICY_TIMELINE_DB", help="SQLite file (default: policy-timeline.db here).")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """policy-timeline: a tamper-evident timeline of policy actions."""
    ctx.obj = load_config(db=db)


@cli.command()
@click.pass_obj
def init(config) -> None:  # type: ignore[no-untyped-def]
    """Create the database (or apply pending migrations) and print its head.

    Example: policy-timeline --db timeline.db init
    """
    store = SQLiteEventStore(config.db)
    digest = store.digest()
    click.echo(f"initialised {config.db}: {digest.position} events, head {digest.hash}")


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit 1."""
    try:
        cli(standalone_mode=True)
    except EventLogError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
