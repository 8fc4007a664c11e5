"""Old schema versions: a real v1 PurchaseOrdered record is read as v2, its bytes untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures.tamper import open_raw, row

from events import EventValidationError, NewEvent, SQLiteEventStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "purchase_ordered_v1.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
V1_IDS = [r["id"] for r in ROWS if r["type"] == "PurchaseOrdered"]
V1_NAMES, V2_NAMES = ("buyer_country", "units"), ("buyer_jurisdiction", "quantity")


def v1_order(data: dict[str, object]) -> NewEvent:
    """A PurchaseOrdered as a client still on schema version 1 sends it."""
    return NewEvent("PurchaseOrdered", data, "2026-01-15", schema_version=1)


@pytest.fixture
def old_log(open_store: Callable[..., SQLiteEventStore], db_path: Path) -> SQLiteEventStore:
    """A log holding the rows an older version of the code wrote (inserted as stored)."""
    open_store().close()  # today's schema, empty
    with open_raw(db_path) as conn:
        columns = list(ROWS[0])
        conn.executemany(
            f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [[r[c] for c in columns] for r in ROWS],
        )
    return open_store()


def test_the_fixture_holds_v1_records_with_the_old_field_names() -> None:
    stored = [json.loads(r["data"]) for r in ROWS if r["id"] in V1_IDS]
    assert {r["schema_version"] for r in ROWS if r["id"] in V1_IDS} == {1}
    assert all(set(V1_NAMES) <= set(d) and not set(V2_NAMES) & set(d) for d in stored)


def test_v1_records_are_read_as_v2_with_the_new_field_names(old_log: SQLiteEventStore) -> None:
    first, second = (e for e in old_log.read_all() if e.type == "PurchaseOrdered")
    assert (first.schema_version, second.schema_version) == (2, 2)
    assert first.data == {
        "buyer": "Acme Metals",
        "buyer_jurisdiction": "US",
        "subject": "gallium",
        "quantity": 250,
        "value": 41250.5,
    }
    assert second.data["quantity"] == 40 and second.data["policy_id"] == "CN-2025-7"
    assert [e.data for e in old_log.read_stream("trade:acme")] == [first.data, second.data]
    assert old_log.get(V1_IDS[0]) == first
    assert [e.position for e in old_log.read_all(types=["PurchaseOrdered"])] == [2, 3]


def test_upcasting_leaves_the_stored_bytes_and_the_chain_alone(old_log: SQLiteEventStore, db_path: Path) -> None:
    list(old_log.read_all())
    assert [row(db_path, r["position"])["data"] for r in ROWS] == [r["data"] for r in ROWS]
    assert [row(db_path, r["position"])["schema_version"] for r in ROWS] == [r["schema_version"] for r in ROWS]
    report = old_log.verify()
    assert (report.ok, report.events_checked, report.head_hash) == (True, 3, ROWS[-1]["hash"])
    assert [e.hash for e in old_log.read_all()] == [r["hash"] for r in ROWS]


def test_a_v1_payload_is_upcast_on_the_way_in(old_log: SQLiteEventStore, db_path: Path) -> None:
    v1 = {"buyer": "Acme Metals", "buyer_country": "US", "subject": "gallium", "units": 7}
    recorded = old_log.append("trade:acme", [v1_order(v1)], expected_version=2)
    [new] = recorded.events
    assert (new.version, new.schema_version) == (3, 2)
    assert new.data == {"buyer": "Acme Metals", "buyer_jurisdiction": "US", "subject": "gallium", "quantity": 7}
    stored = row(db_path, new.position)
    assert stored["schema_version"] == 2 and json.loads(stored["data"]) == new.data
    assert old_log.verify().ok


@pytest.mark.parametrize(
    ("data", "paths"),
    [
        ({"buyer": "A", "buyer_country": "US", "subject": "s"}, ["units"]),
        ({"buyer": "A", "buyer_jurisdiction": "US", "subject": "s", "quantity": 1}, [*V2_NAMES, *V1_NAMES]),
    ],
    ids=["v1 without units", "v2 names as v1"],
)
def test_a_v1_payload_is_validated_against_the_v1_schema(
    old_log: SQLiteEventStore, data: dict[str, object], paths: list[str]
) -> None:
    with pytest.raises(EventValidationError) as info:
        old_log.append("trade:acme", [v1_order(data)])
    assert sorted(info.value.errors) == sorted(f"events.0.data.{p}" for p in paths)
