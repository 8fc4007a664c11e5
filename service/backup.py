"""Online backup of the database (SQLite's backup API): a consistent copy while the service writes."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

from events import Digest, SQLiteEventStore, VerifyReport
from events.sqlite_db import open_connection, translate


@dataclass(frozen=True)
class BackupReport:
    """Where the copy is, its head (position, hash) and, if checked, its chain verification."""

    path: str
    bytes: int
    digest: Digest
    verify: VerifyReport | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "bytes": self.bytes,
            **self.digest.to_dict(),
            "verify": self.verify.to_dict() if self.verify else None,
        }


def backup_database(
    source: str, target: str, *, busy_timeout: float = 5.0, overwrite: bool = False, verify: bool = True
) -> BackupReport:
    """Copy `source` to `target` with the backup API and report the copy's own digest.

    The copy is taken in one backup step, i.e. inside one read transaction: under WAL,
    writers carry on, and the copy is the log exactly as of one commit. It is written to a
    temporary file beside `target` and renamed into place, so `target` never holds half a copy.
    Raises FileNotFoundError, FileExistsError (unless `overwrite`), or StorageError."""
    if not os.path.isfile(source):
        raise FileNotFoundError(f"no database at {source}")
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{target} already exists (use --force to replace it)")
    if os.path.abspath(source) == os.path.abspath(target):
        raise FileExistsError("the backup must go to another file than the database")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no directory {folder} for the backup")
    partial = f"{target}.partial-{os.getpid()}"
    _remove(partial)
    try:
        _copy(source, partial, busy_timeout)
        store = SQLiteEventStore(partial, migrate=False)
        try:
            digest = store.digest()
            report = store.verify() if verify else None
        finally:
            store.close()
        os.replace(partial, target)
    finally:
        _remove(partial)
    return BackupReport(target, os.path.getsize(target), digest, report)


def _copy(source: str, target: str, busy_timeout: float) -> None:
    src = open_connection(source, busy_timeout)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: the whole file in one step, one consistent snapshot
        finally:
            dst.close()
    except sqlite3.Error as e:
        raise translate(e) from e
    finally:
        src.close()


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)
