"""The `policy-timeline` command line: thin commands that parse, call the use case, format.

Exit status: 0 ok, 1 a user error (one line on stderr), 2 a usage error. Data commands
print JSON: one document, or JSON Lines for streams of events.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import click

from events import NewEvent

from .backup import backup_database
from .cli_common import RootGroup, config_of, echo_json, get_services, read_json_option
from .cli_query import audit, projections, tokens
from .cli_serve import scheduler, serve
from .config import load_config
from .importexport import ImportFileError, event_line, export_events, import_events, iter_events
from .usecases import append_events, log_digest

PROGRESS_MIN_BYTES = 1 << 20  # files this large get a progress bar on stderr


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="POLICY_TIMELINE_DB",
    metavar="PATH",
    help="SQLite file [env POLICY_TIMELINE_DB; default policy-timeline.db].",
)
@click.version_option(package_name="policy-timeline")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """policy-timeline: a tamper-evident timeline of policy actions, and its answers.

    \b
    Example: policy-timeline --db timeline.db events --limit 5
    """
    ctx.obj = load_config(db=db)
    ctx.meta["db_given"] = db is not None


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the database (or apply pending migrations), set up the projections, print its head.

    \b
    Example: policy-timeline --db timeline.db init
    """
    services = get_services(ctx)
    digest = services.store.digest()
    click.echo(f"initialised {config_of(ctx).db}: {digest.position} events, head {digest.hash}")


@cli.command()
@click.argument("stream")
@click.argument("event_type", metavar="TYPE")
@click.option("--data", required=True, help="The payload: JSON text, @FILE, or - for stdin.")
@click.option("--occurred-at", required=True, help="When it happened: YYYY, YYYY-MM, YYYY-MM-DD or RFC 3339.")
@click.option("--id", "event_id", help="Event id (UUID); a retry with the same id is a no-op.")
@click.option("--metadata", help="Metadata (source, recorded_by…): JSON text, @FILE, or -.")
@click.option("--expected-version", help="any, no_stream, or the stream's current version.")
@click.pass_context
def append(
    ctx: click.Context,
    stream: str,
    event_type: str,
    data: str,
    occurred_at: str,
    event_id: str | None,
    metadata: str | None,
    expected_version: str | None,
) -> None:
    """Append one event to STREAM and print the recorded event (created false on a retry).

    \b
    Example: policy-timeline append statements-us StatementIssued --occurred-at 2026-07-01
      --data '{"speaker": "Press secretary", "organisation": "White House", "summary": "…"}'
    """
    event = NewEvent(
        type=event_type,
        data=read_json_option(data, "--data"),
        occurred_at=occurred_at,
        id=event_id,
        metadata=read_json_option(metadata, "--metadata") if metadata else {},
    )
    expected: Any = "any"
    if expected_version is not None:
        digits = expected_version.lstrip("-")
        numeric = digits.isascii() and digits.isdigit()  # int() would choke on "²"
        expected = int(expected_version) if numeric else expected_version
    recorded, created = append_events(get_services(ctx, setup=False), stream, [event], expected)
    echo_json({"created": created, "events": [e.to_dict() for e in recorded]})


def _start_position(after: str, head: int) -> int:
    if after == "head":
        return head
    try:
        value = int(after)
    except ValueError:
        raise click.BadParameter("must be a position, a negative count from the head, or 'head'") from None
    return max(0, head + value) if value < 0 else value


@cli.command()
@click.option(
    "--after", default="0", show_default=True, help="Position to start after; -N = the last N positions; head."
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only this event type (repeatable).")
@click.option("--stream-prefix", help="Only streams whose name starts with this.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events as they are recorded (Ctrl-C stops).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@click.pass_context
def events(
    ctx: click.Context,
    after: str,
    limit: int | None,
    types: tuple[str, ...],
    stream_prefix: str | None,
    follow: bool,
    interval: float,
) -> None:
    """Print recorded events as JSON Lines, in log order, filtered; --follow tails the log.

    \b
    Example: policy-timeline events --after -20 --type PolicyApproved --follow
    """
    services = get_services(ctx, setup=False)
    position = _start_position(after, log_digest(services).position)
    remaining = limit
    out = sys.stdout
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            for event in iter_events(
                services, after=position, limit=remaining, types=types, stream_prefix=stream_prefix
            ):
                out.write(event_line(event))
                position = event.position
                if remaining is not None:
                    remaining -= 1
            out.flush()
            if not follow or remaining == 0:
                return
            time.sleep(interval)


@cli.command("export")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Only events after this position.")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="Only this event type (repeatable).")
@click.option("--stream-prefix", help="Only streams whose name starts with this.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout."
)
@click.pass_context
def export_command(
    ctx: click.Context,
    after: int,
    types: tuple[str, ...],
    stream_prefix: str | None,
    limit: int | None,
    output: str | None,
) -> None:
    """Write recorded events as JSON Lines (the format `import` reads back).

    \b
    Example: policy-timeline export --stream-prefix policy-us- -o us.jsonl
    """
    services = get_services(ctx, setup=False)
    filters: dict[str, Any] = {"after": after, "types": types, "stream_prefix": stream_prefix, "limit": limit}
    if output is None:
        count = export_events(services, sys.stdout, **filters)
    else:
        partial = f"{output}.partial-{os.getpid()}"
        try:
            with open(partial, "w", encoding="utf-8", newline="\n") as f:
                count = export_events(services, f, **filters)
            os.replace(partial, output)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(partial)
    click.echo(f"exported {count} event(s){f' to {output}' if output else ''}", err=True)


def _line_source(path: str) -> tuple[Any, int]:
    """A re-readable source of the file's lines, and its size in bytes (stdin is buffered)."""
    if path == "-":
        lines = sys.stdin.read().splitlines()
        return (lambda: lines), sum(map(len, lines))

    def read() -> Iterator[str]:
        with open(path, encoding="utf-8") as f:
            yield from f

    return read, os.path.getsize(path)


def _progress_bar(total_lines: int) -> Any:
    def progress(label: str, lines: Iterable[str]) -> Any:
        return click.progressbar(lines, length=total_lines, label=label, file=sys.stderr)

    return progress


@cli.command("import")
@click.argument("file", metavar="FILE")
@click.pass_context
def import_command(ctx: click.Context, file: str) -> None:
    """Append the events of a JSON Lines FILE (- for stdin): every line is checked first.

    A bad line (JSON, schema, stream name, an id it refers to that is neither earlier in the
    file nor in the log) is reported with its line number and nothing is appended. Lines
    already recorded (same id, same content) are skipped, so a re-import is a no-op. Reads the
    demo format and the export format.

    \b
    Example: policy-timeline import service/demo/h200_timeline.jsonl
    """
    source, size = _line_source(file)
    kwargs: dict[str, Any] = {}
    if size >= PROGRESS_MIN_BYTES:
        kwargs["progress"] = _progress_bar(sum(1 for _ in source()))
    try:
        report = import_events(get_services(ctx, setup=False), source, **kwargs)
    except ImportFileError as e:
        for number, message in e.problems:
            click.echo(f"{file}:{number}: {message}", err=True)
        if e.bad_lines > len({n for n, _ in e.problems}):
            click.echo(f"{file}: … and more; only the first {len(e.problems)} problems are shown", err=True)
        raise
    echo_json(report.to_dict())


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@click.option("--verify/--no-verify", default=True, show_default=True, help="Verify the copy's hash chain.")
@click.pass_context
def backup(ctx: click.Context, path: str, force: bool, verify: bool) -> None:
    """Copy the database to PATH with SQLite's online backup (consistent while the service
    writes) and print the copy's digest: its head position and hash.

    \b
    Example: policy-timeline --db timeline.db backup backups/timeline-2026-06-30.db
    """
    config = config_of(ctx)
    report = backup_database(config.db, path, busy_timeout=config.busy_timeout, overwrite=force, verify=verify)
    echo_json(report.to_dict())
    if report.verify is not None and not report.verify.ok:
        raise click.ClickException(f"the backup's hash chain does not verify: {report.verify.problem}")


cli.add_command(projections)
cli.add_command(audit)
cli.add_command(tokens)
cli.add_command(serve)
cli.add_command(scheduler)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (`policy-timeline`)."""
    cli.main(args=argv, prog_name="policy-timeline")  # click quiets a broken pipe (`| head`)


if __name__ == "__main__":
    main()
