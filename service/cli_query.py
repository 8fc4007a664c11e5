"""`policy-timeline projections|audit|tokens`: answers, audits and API tokens on the command line."""

from __future__ import annotations

import contextlib
import secrets
from datetime import date

import click

from events import Digest
from projections import CheckpointMovedError

from .cli_common import DATE, KEY_VALUE, echo_json, get_services
from .tokens import SCOPES, TokenStore
from .usecases import (
    log_digest,
    projection_status,
    query_projection,
    rebuild_projection,
    refresh_projections,
    replay_projection,
    verify_log,
)


# -- projections --------------------------------------------------------------------------------
@click.group()
def projections() -> None:
    """List, query, rebuild and refresh the projections (the answers kept over the log).

    \b
    Example: policy-timeline projections show approvals-without-purchases --on 2026-06-30
    """


@projections.command("list")
@click.pass_context
def projections_list(ctx: click.Context) -> None:
    """Every projection with its checkpoint, lag, status and parameters.

    \b
    Example: policy-timeline projections list
    """
    echo_json(projection_status(get_services(ctx)))


@projections.command("show")
@click.argument("name")
@click.option("--on", "on", type=DATE, help="The date the answer is for (default: today, or the --as-of date).")
@click.option("--as-of", help="Only what the log knew at this RFC 3339 instant.")
@click.option("--at-position", type=click.IntRange(min=0), help="Only the events up to this log position.")
@click.option(
    "--param", "params", type=KEY_VALUE, multiple=True, help="A projection parameter, KEY=VALUE (repeatable)."
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Only this many items of a list answer (default: all; timeline: 5000)."
)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many items of a list answer.")
@click.option(
    "--refresh/--no-refresh", default=True, show_default=True, help="Catch the projection up with the log first."
)
@click.pass_context
def projections_show(
    ctx: click.Context,
    name: str,
    on: date | None,
    as_of: str | None,
    at_position: int | None,
    params: tuple[tuple[str, str], ...],
    limit: int | None,
    offset: int,
    refresh: bool,
) -> None:
    """Answer projection NAME's question, now or as the log stood earlier.

    \b
    Example: policy-timeline projections show approvals-without-purchases --on 2026-03-01
      --as-of 2026-03-01T00:00:00Z --param anchor=PolicyApproved,LicenseGranted
    """
    services = get_services(ctx)
    if refresh:
        with contextlib.suppress(CheckpointMovedError):  # another process keeps catching it up: fine
            refresh_projections(services, name)
    answer = query_projection(
        services, name, on=on, as_of=as_of, at_position=at_position, params=dict(params), offset=offset, limit=limit
    )
    echo_json(answer.to_dict())


@projections.command("rebuild")
@click.argument("name")
@click.pass_context
def projections_rebuild(ctx: click.Context, name: str) -> None:
    """Rebuild projection NAME from the start of the log (readers keep the old answer meanwhile).

    \b
    Example: policy-timeline projections rebuild stalled-approvals
    """
    echo_json(rebuild_projection(get_services(ctx), name))


@projections.command("refresh")
@click.argument("name", required=False)
@click.pass_context
def projections_refresh(ctx: click.Context, name: str | None) -> None:
    """Catch every projection (or just NAME) up with the log; print the events each applied.

    \b
    Example: policy-timeline projections refresh
    """
    echo_json({"applied": refresh_projections(get_services(ctx), name)})


# -- audit --------------------------------------------------------------------------------------
@click.group()
def audit() -> None:
    """Check the hash chain, print the head digest, replay a projection against its state.

    \b
    Example: policy-timeline audit verify
    """


@audit.command("verify")
@click.option("--position", type=click.IntRange(min=0), help="With --hash: a digest kept earlier to check against.")
@click.option("--hash", "hash_", metavar="HASH", help="The hash of that earlier digest.")
@click.pass_context
def audit_verify(ctx: click.Context, position: int | None, hash_: str | None) -> None:
    """Walk the whole hash chain (and, given an earlier digest, prove it was not rewritten).

    Exits 1 if the chain is broken, after printing the report.

    \b
    Example: policy-timeline audit verify --position 24 --hash 3f1c…
    """
    if (position is None) != (hash_ is None):
        raise click.UsageError("--position and --hash go together")
    expected = Digest(position, hash_, None) if position is not None and hash_ is not None else None
    report = verify_log(get_services(ctx, setup=False), expected)
    echo_json(report.to_dict())
    if not report.ok:
        raise click.ClickException(
            f"the hash chain is broken at position {report.first_bad_position}: {report.problem}"
        )


@audit.command("digest")
@click.pass_context
def audit_digest(ctx: click.Context) -> None:
    """Print the head of the log (position, hash, recorded_at): keep it to verify against later.

    \b
    Example: policy-timeline audit digest > digest-2026-06-30.json
    """
    echo_json(log_digest(get_services(ctx, setup=False)).to_dict())


@audit.command("replay")
@click.argument("name")
@click.option("--as-of", help="Compare as the log stood at this RFC 3339 instant (default: the checkpoint).")
@click.pass_context
def audit_replay(ctx: click.Context, name: str, as_of: str | None) -> None:
    """Rebuild projection NAME in memory from the log and compare it with the stored state.

    Exits 1 if they differ, after printing the differences.

    \b
    Example: policy-timeline audit replay approvals-without-purchases
    """
    report = replay_projection(get_services(ctx), name, as_of)
    echo_json(report)
    if not report["match"]:
        raise click.ClickException(
            f"projection {name!r} differs from a replay of the log at position {report['position']}"
        )


# -- tokens -------------------------------------------------------------------------------------
@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens (only their hashes are stored).

    \b
    Example: policy-timeline tokens create --scope append --name newsroom
    """


def _token_store(ctx: click.Context) -> TokenStore:
    return get_services(ctx, setup=False).tokens


@tokens.command("create")
@click.option(
    "--scope",
    "scopes",
    type=click.Choice(SCOPES),
    multiple=True,
    required=True,
    help="read, append or admin (repeatable).",
)
@click.option("--name", help="A name to list and revoke it by (default: the scope and a random suffix).")
@click.pass_context
def tokens_create(ctx: click.Context, scopes: tuple[str, ...], name: str | None) -> None:
    """Create a token and print it alone on stdout: it is shown this once, never again.

    \b
    Example: TOKEN=$(policy-timeline tokens create --scope append --name newsroom)
    """
    name = name or f"{'-'.join(scopes)}-{secrets.token_hex(3)}"
    click.echo(_token_store(ctx).create(scopes, name))


@tokens.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@click.pass_context
def tokens_list(ctx: click.Context, include_revoked: bool) -> None:
    """List the tokens (id, name, scopes, dates; never the secret).

    \b
    Example: policy-timeline tokens list --all
    """
    echo_json([t.to_dict() for t in _token_store(ctx).list(include_revoked=include_revoked)])


@tokens.command("revoke")
@click.argument("token", metavar="ID_OR_NAME")
@click.pass_context
def tokens_revoke(ctx: click.Context, token: str) -> None:
    """Revoke a token by id or name; requests with it are refused from now on.

    \b
    Example: policy-timeline tokens revoke newsroom
    """
    echo_json(_token_store(ctx).revoke(token).to_dict())
