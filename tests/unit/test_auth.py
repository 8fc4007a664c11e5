"""Which scope a request needs, and what each scope grants (no I/O)."""

from __future__ import annotations

import pytest

from service.auth import required_scope
from service.tokens import IMPLIED, SCOPES, Principal


def view(scope: object = ...) -> object:
    def f() -> None: ...

    if scope is not ...:
        f.required_scope = scope  # type: ignore[attr-defined]
    return f


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_mutating_view_that_declares_nothing_needs_admin(method: str) -> None:
    assert required_scope(view(), method, require_read_token=False) == "admin"


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_a_read_that_declares_nothing_is_open(method: str) -> None:
    assert required_scope(view(), method, require_read_token=True) is None


def test_declared_read_scope_applies_only_when_configured() -> None:
    assert required_scope(view("read"), "GET", require_read_token=False) is None
    assert required_scope(view("read"), "GET", require_read_token=True) == "read"


def test_declared_write_scopes_always_apply() -> None:
    assert required_scope(view("append"), "POST", require_read_token=False) == "append"
    assert required_scope(view("admin"), "POST", require_read_token=False) == "admin"


def test_public_views_need_nothing() -> None:
    assert required_scope(view(None), "GET", require_read_token=True) is None


@pytest.mark.parametrize(
    ("granted", "allowed"),
    [("read", {"read"}), ("append", {"read", "append"}), ("admin", {"read", "append", "admin"})],
)
def test_admin_implies_append_and_append_implies_read(granted: str, allowed: set[str]) -> None:
    principal = Principal(1, "t", frozenset(IMPLIED[granted]))
    assert {scope for scope in SCOPES if principal.allows(scope)} == allowed
