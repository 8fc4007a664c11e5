"""The API token store: secrets shown once, stored as hashes, verified, revoked."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from events import FixedClock, SQLiteEventStore
from service.tokens import TokenError, TokenStore


@pytest.fixture
def tokens(store: SQLiteEventStore, clock: FixedClock) -> TokenStore:
    return TokenStore(store, clock)


def test_create_returns_the_token_once_and_stores_only_its_hash(tokens: TokenStore, db_path: Path) -> None:
    token = tokens.create(["append"], "newsroom")
    assert token.startswith("ptl_")
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT * FROM api_tokens").fetchall()
    dump = repr(rows)
    assert token not in dump and token.split("_", 2)[2] not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump


def test_verify_returns_the_principal_with_implied_scopes(tokens: TokenStore) -> None:
    token = tokens.create("append", "newsroom")
    principal = tokens.verify(token)
    assert principal is not None
    assert (principal.name, principal.scopes) == ("newsroom", frozenset({"append", "read"}))


@pytest.mark.parametrize("candidate", [None, "", "ptl_", "ptl_nokey", "x" * 500, "Bearer x"])
def test_verify_refuses_malformed_tokens(tokens: TokenStore, candidate: str | None) -> None:
    assert tokens.verify(candidate) is None


def test_verify_refuses_a_forged_secret_for_a_real_key(tokens: TokenStore) -> None:
    token = tokens.create(["admin"], "ops")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert tokens.verify(forged) is None


def test_list_shows_no_secrets_and_revoke_by_name_or_id(tokens: TokenStore, clock: FixedClock) -> None:
    first = tokens.create(["read"], "reader")
    second = tokens.create(["admin", "read"], "ops")
    listed = tokens.list()
    assert [(t.name, t.scopes) for t in listed] == [("reader", ("read",)), ("ops", ("read", "admin"))]
    assert first not in repr(listed)
    clock.advance(hours=1)
    revoked = tokens.revoke("reader")
    assert revoked.revoked_at == "2026-01-01T10:00:00.000000Z"
    tokens.revoke(str(listed[1].id))
    assert tokens.verify(first) is None and tokens.verify(second) is None
    assert tokens.list() == []
    assert [t.name for t in tokens.list(include_revoked=True)] == ["reader", "ops"]


def test_a_revoked_name_can_be_reused(tokens: TokenStore) -> None:
    tokens.create(["read"], "ci")
    with pytest.raises(TokenError, match="exists"):
        tokens.create(["read"], "ci")
    tokens.revoke("ci")
    assert tokens.verify(tokens.create(["read"], "ci")) is not None


@pytest.mark.parametrize(
    ("scopes", "name"), [([], "x"), (["root"], "x"), (["read"], ""), (["read"], "123"), (["read"], "x" * 101)]
)
def test_bad_scopes_or_names_are_refused(tokens: TokenStore, scopes: list[str], name: str) -> None:
    with pytest.raises(TokenError):
        tokens.create(scopes, name)


def test_revoking_an_unknown_token_is_an_error(tokens: TokenStore) -> None:
    with pytest.raises(TokenError):
        tokens.revoke("nobody")
    with pytest.raises(TokenError):
        tokens.revoke(42)
