"""README.md documents every API route and every configuration variable."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from flask import Flask

from service.config import PREFIX, Config

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_every_route_is_in_the_api_section(api_app: Flask) -> None:
    api = section("API")
    for rule in api_app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule).replace("{event_id}", "{id}")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            assert f"`{method} {path}`" in api, f"{method} {path}"


def test_every_setting_is_in_the_configuration_table() -> None:
    table = section("Configuration")
    for field in fields(Config):
        assert f"`{PREFIX}{field.name.upper()}`" in table, field.name
