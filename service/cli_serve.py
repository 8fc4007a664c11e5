"""`policy-timeline serve` and `policy-timeline scheduler`: running the service, and the demo."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sqlite3
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from .bootstrap import build_services
from .cli_common import config_of, echo_json, get_services
from .config import Config
from .importexport import import_events
from .server import ServeOptions, Supervisor, check_can_listen, pick_server

DEMO_DB = "policy-timeline-demo.db"
#: stamped into a demo database's header (PRAGMA application_id), so `serve --demo` knows it
#: may recreate that file and never touches any other non-empty database
DEMO_APPLICATION_ID = 0x50544C44  # "PTLD"


@click.command()
@click.option("--once", is_flag=True, help="Run every job once and exit (for cron), printing the results.")
@click.pass_context
def scheduler(ctx: click.Context, once: bool) -> None:
    """Run the scheduled jobs: projection refreshes, the daily figures, chain verification.

    Only one scheduler works per database at a time (it holds a lease in the database); a
    second one waits to take over. `serve` starts one itself unless --no-scheduler.
    SIGINT/SIGTERM stop it cleanly.

    \b
    Example: policy-timeline --db timeline.db scheduler --once
    """
    from .scheduler import run_scheduler

    services = get_services(ctx)
    if once:
        echo_json(run_scheduler(services, once=True))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every run of every job
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run_scheduler(services, stop=stop)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--db", metavar="PATH", help="SQLite file (overrides the global --db).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Server worker processes.")
@click.option(
    "--no-scheduler", is_flag=True, help="Do not start the scheduler (run `policy-timeline scheduler` elsewhere)."
)
@click.option(
    "--demo", is_flag=True, help="Load the built-in demo timeline into a fresh database and print an admin token."
)
@click.option(
    "--server", "server_name", type=click.Choice(["auto", "gunicorn", "waitress"]), default="auto", show_default=True,
    help="gunicorn (POSIX) or the pure-Python waitress; auto picks gunicorn where it runs.",
)  # fmt: skip
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    db: str | None,
    workers: int,
    no_scheduler: bool,
    demo: bool,
    server_name: str,
) -> None:
    """Serve the HTTP API (gunicorn, N workers) with exactly one scheduler beside it.

    The database is created or migrated first, then the server and one scheduler process
    start; SIGINT/SIGTERM stop both. With --demo, the built-in timeline (US H200 sales to
    China) is loaded into a fresh database (policy-timeline-demo.db unless --db names
    another; a non-empty database that is not a demo is refused) and an admin token printed.

    \b
    Example: policy-timeline serve --demo --port 8000
    """
    config = config_of(ctx)
    db_given = db is not None or ctx.find_root().meta.get("db_given", False)
    if db is not None:
        config = config.with_overrides(db=db)
    server = pick_server(server_name)
    check_can_listen(host, port)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if demo:
        config = config.with_overrides(db=config.db if db_given else DEMO_DB)
        loaded = load_demo(config)
        click.echo(f"demo: {loaded.events} events of the H200 timeline loaded into {config.db}")
        click.echo(f"admin token: {loaded.token}")
        click.echo(f"url: {url}")
        click.echo(
            f"try: curl -H 'Authorization: Bearer {loaded.token}' {url}v1/projections/approvals-without-purchases"
        )
    else:
        build_services(config).close()  # create/migrate now, in a short-lived step: no connection is kept
    supervisor = Supervisor(
        config,
        ServeOptions(host=host, port=port, workers=workers, scheduler=not no_scheduler, server=server),
        log=lambda message: click.echo(f"policy-timeline: {message}", err=True),
    )

    def ready() -> None:
        scheduler_note = f"scheduler pid {supervisor.scheduler.pid}" if supervisor.scheduler else "no scheduler"
        click.echo(
            f"policy-timeline: serving {url} from {config.db} ({server}, {workers} worker(s); {scheduler_note})",
            err=True,
        )

    ctx.exit(supervisor.run(on_ready=ready))


@dataclass(frozen=True)
class DemoLoaded:
    events: int
    token: str


def demo_lines() -> list[str]:
    """The built-in demo timeline, one JSON event per line."""
    text = resources.files("service.demo").joinpath("h200_timeline.jsonl").read_text(encoding="utf-8")
    return text.splitlines()


def load_demo(config: Config) -> DemoLoaded:
    """Recreate config.db as a demo database: the demo timeline, projections caught up, and a
    new admin token. Raises click.ClickException for a non-empty database that is not a demo."""
    _clear_demo_database(config.db)
    services = build_services(config)
    try:
        lines = demo_lines()
        report = import_events(services, lambda: lines)
        services.store.connection().execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
        services.engine.catch_up()
        token = services.tokens.create(["admin"], f"demo-admin-{secrets.token_hex(3)}")
    finally:
        services.close()
    return DemoLoaded(report.appended + report.already_recorded, token)


def _clear_demo_database(path: str) -> None:
    """Delete an earlier demo database at `path`; accept a missing or empty one; refuse others."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            has_log = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
            count = conn.execute("SELECT count(*) FROM events").fetchone()[0] if has_log else 0
        finally:
            conn.close()
    except sqlite3.Error:
        raise click.ClickException(
            f"{path} is not a policy-timeline database; choose another --db for the demo"
        ) from None
    if application_id == DEMO_APPLICATION_ID:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    elif count:
        raise click.ClickException(
            f"{path} holds {count} events and is not a demo database; the demo needs a fresh one (choose another --db)"
        )
