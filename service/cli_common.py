"""What every `policy-timeline` command shares: the root group that turns user errors into
one line and exit 1, the services of the invocation, JSON output, and parameter types."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

import click

from events import EventLogError
from events.timefmt import parse_date
from projections import ProjectionError

from .bootstrap import Services, build_services
from .config import Config
from .errors import ServiceError

#: errors a user can fix: one line on stderr and exit 1, never a traceback
USER_ERRORS = (EventLogError, ProjectionError, ServiceError, OSError, ValueError)


def one_line(error: BaseException) -> str:
    """A readable one-line message for an error."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror}"
    text = str(error).strip()
    if isinstance(error, json.JSONDecodeError):
        text = f"invalid JSON: {text}"
    return (text.splitlines() or [type(error).__name__])[0]


class RootGroup(click.Group):
    """The root command group: a user error anywhere below it becomes `Error: <one line>`
    on stderr and exit status 1 (click's usage errors keep status 2)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `policy-timeline events | head`: main() ends quietly
            raise
        except USER_ERRORS as e:
            raise click.ClickException(one_line(e)) from e


def config_of(ctx: click.Context) -> Config:
    config: Config = ctx.find_root().obj
    return config


def get_services(ctx: click.Context, *, setup: bool = True) -> Services:
    """The services of this invocation, built on first use and closed when it ends."""
    root = ctx.find_root()
    key = "services" if setup else "services-no-setup"
    if key not in root.meta:
        services = build_services(config_of(ctx), setup=setup)
        root.meta[key] = services
        root.call_on_close(services.close)
    services_: Services = root.meta[key]
    return services_


def echo_json(value: Any) -> None:
    """One JSON document on stdout (indented for people, still JSON for programs)."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def echo_json_line(value: Any) -> None:
    """One JSON Lines line on stdout."""
    click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def read_json_option(text: str, what: str) -> Any:
    """The JSON of an option: inline text, `@path` for a file, or `-` for stdin."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise click.ClickException(f"{what}: not valid JSON: {e}") from None


class DateType(click.ParamType):
    """A plain YYYY-MM-DD date."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return parse_date(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class KeyValueType(click.ParamType):
    """A `key=value` pair."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key, val


DATE = DateType()
KEY_VALUE = KeyValueType()
