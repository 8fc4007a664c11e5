"""API tokens: Bearer tokens with scopes, kept in the log's SQLite file as SHA-256 hashes only.

A token reads `ptl_<key>_<secret>`: `key` is a public lookup id, `secret` 256 random bits.
Only the hash of the whole token is stored and it is compared in constant time, so the
database never holds a usable token and a timing probe learns nothing about the secret.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from events import Clock, SQLiteEventStore, SystemClock
from events.sqlite_db import immediate, translate
from events.timefmt import format_instant

from .errors import ServiceError

SCOPES = ("read", "append", "admin")
#: what each scope grants: admin implies append and read, append implies read.
IMPLIED = {"read": {"read"}, "append": {"append", "read"}, "admin": {"admin", "append", "read"}}
PREFIX = "ptl_"
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()

migrations = Migrations("policy_timeline.service")


@migrations(name="0001_api_tokens")
def create_api_tokens(db: Database) -> None:
    """Tokens by id; a name is unique among the tokens not revoked."""
    db.execute(
        """
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL")


class TokenError(ServiceError):
    """A token could not be created or revoked (bad scope or name, unknown token)."""


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but the secret."""

    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for, with the scopes it grants (implied ones included)."""

    token_id: int
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Create, list, revoke and verify API tokens (same SQLite file as the log)."""

    def __init__(self, store: SQLiteEventStore, clock: Clock | None = None, *, migrate: bool = True) -> None:
        self.store = store
        self.clock: Clock = clock or store.clock or SystemClock()
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Apply pending migrations under the write lock (safe when processes start together);
        an up-to-date database is only read (see SQLiteEventStore.migrate)."""
        if not self.pending_migrations():
            return
        conn = self.store.connection()
        with immediate(conn):
            migrations.apply(self.store.pool.database())

    def pending_migrations(self) -> list[str]:
        return [m.name for m in migrations.pending(self.store.pool.database())]

    def create(self, scopes: Iterable[str] | str, name: str) -> str:
        """Issue a token and return it in clear: the only time it is ever shown.

        Raises TokenError for an unknown or missing scope, a bad name, or a name already
        used by a token that is not revoked."""
        wanted = _check_scopes(scopes)
        name = _check_name(name)
        key = secrets.token_hex(6)
        token = f"{PREFIX}{key}_{secrets.token_urlsafe(32)}"
        conn = self.store.connection()
        try:
            with immediate(conn):
                if conn.execute("SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL", (name,)).fetchone():
                    raise TokenError(f"a token named {name!r} exists; revoke it first or choose another name")
                conn.execute(
                    "INSERT INTO api_tokens (key, name, scopes, token_hash, created_at) VALUES (?,?,?,?,?)",
                    (key, name, ",".join(wanted), _hash(token), format_instant(self.clock.now())),
                )
        except sqlite3.Error as e:
            raise translate(e) from e
        return token

    def list(self, include_revoked: bool = False) -> list[TokenInfo]:
        """Every token (without secrets), oldest first."""
        sql = "SELECT id, name, scopes, created_at, revoked_at FROM api_tokens"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        rows = self._read(sql + " ORDER BY id", ())
        return [TokenInfo(r[0], r[1], tuple(r[2].split(",")), r[3], r[4]) for r in rows]

    def revoke(self, token: int | str) -> TokenInfo:
        """Revoke an active token by id or name; returns it. Raises TokenError if there is none."""
        conn = self.store.connection()
        now = format_instant(self.clock.now())
        by_id = isinstance(token, int) or (isinstance(token, str) and token.isascii() and token.isdigit())
        where = "id = ?" if by_id else "name = ?"
        arg: Any = int(token) if by_id else str(token)
        try:
            with immediate(conn):
                row = conn.execute(
                    f"SELECT id, name, scopes, created_at FROM api_tokens WHERE {where} AND revoked_at IS NULL", (arg,)
                ).fetchone()
                if row is None:
                    raise TokenError(f"no active token with {'id' if by_id else 'name'} {token!r}")
                conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (now, row[0]))
        except sqlite3.Error as e:
            raise translate(e) from e
        return TokenInfo(row[0], row[1], tuple(row[2].split(",")), row[3], now)

    def verify(self, token: str | None) -> Principal | None:
        """The principal of a valid, unrevoked token; None otherwise (never raises for bad input)."""
        if not token or not isinstance(token, str) or len(token) > 200 or not token.startswith(PREFIX):
            return None
        key = token[len(PREFIX) :].split("_", 1)[0]
        rows = self._read(
            "SELECT id, name, scopes, token_hash FROM api_tokens WHERE key = ? AND revoked_at IS NULL", (key,)
        )
        stored = rows[0][3] if rows else _DUMMY_HASH
        matches = hmac.compare_digest(_hash(token), stored)  # constant time, also when the key is unknown
        if not rows or not matches:
            return None
        token_id, name, scopes, _ = rows[0]
        granted = frozenset().union(*(IMPLIED[s] for s in scopes.split(",") if s in IMPLIED))
        return Principal(token_id, name, granted)

    def _read(self, sql: str, args: tuple[Any, ...]) -> builtins.list[Any]:
        try:
            return self.store.connection().execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise translate(e) from e


def _check_scopes(scopes: Iterable[str] | str) -> tuple[str, ...]:
    items = scopes.split(",") if isinstance(scopes, str) else [str(s) for s in scopes]
    wanted = {s.strip().lower() for s in items if s.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise TokenError(f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}")
    if not wanted:
        raise TokenError(f"a token needs at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in wanted)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or "\x00" in name or name.isdigit():
        raise TokenError("a token name is 1-100 characters, not only digits (digits name a token id)")
    return name.strip()
