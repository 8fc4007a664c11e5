"""The README documents every CLI command and subcommand, and its first command is the demo."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from service.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command below `group`, as the words that invoke it."""
    paths = []
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", command_paths(cli), ids=" ".join)
def test_every_cli_command_is_in_the_readme(readme: str, path: tuple[str, ...]) -> None:
    invocation = "policy-timeline " + " ".join(path)
    assert re.search(re.escape(invocation) + r"\b", readme), f"README.md does not mention `{invocation}`"


def test_the_walk_finds_the_subcommands() -> None:
    paths = command_paths(cli)
    assert ("projections", "show") in paths and ("tokens", "create") in paths and ("serve",) in paths


def test_the_readmes_first_command_runs_the_demo(readme: str) -> None:
    first_block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
    assert first_block is not None
    first_command = next(line for line in first_block.group(1).splitlines() if line.strip())
    assert first_command.split("#")[0].strip() == "make demo"
