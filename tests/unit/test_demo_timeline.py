"""The built-in demo timeline (service/demo/h200_timeline.jsonl) loads cleanly and re-imports idempotently.

Each line is {"stream", "id", "type", "occurred_at", "data", "metadata"}; file order is append order, so
references (ReportDisputed.event_id, RulePublished.implements, LicenseGranted.implements, ...) only point
to earlier lines. Appending every line into a fresh SQLiteEventStore validates every payload and every
metadata block against the built-in schemas.

Modelling choices worth knowing when reading the file:

* The 25% Section 232 tariff of 2026-01-14 (Proclamation 11002) is a `PolicyAmended` of
  `us-h200-china`, not a separate policy or a `CountermeasureIssued`: it is a US measure, and it is the
  mechanism through which the announced "25% to the US government" is collected (H200s made abroad are
  imported into the US for mandatory third-party testing before export to China).
* The interagency licence review reported on 2025-12-18 is a `StatementIssued` (an unnamed
  administration official via Reuters): no licence was granted or denied at that point.
* Chinese measures are `CountermeasureIssued` with formality "informal_guidance" (meetings, customs
  instructions to agents): none was published as a formal rule. Chinese support for domestic accelerators
  (Huawei, Cambricon) is recorded as `StatementIssued`.
* The story is that no chip was ordered: the demo has no `PurchaseOrdered` or `DeliveryCompleted` event;
  a June 2026 `StatementIssued` summarises that, and the >2 million "orders" report is an
  `OrderIntentReported` disputed by NVIDIA on 2026-01-29.
"""

from __future__ import annotations

import json
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from events import NewEvent, SQLiteEventStore
from events.builtin_types import REFERENCE_FIELDS
from events.metadata import CONTENT_BASES

POLICY_ID = "us-h200-china"


def load_lines() -> list[dict[str, Any]]:
    text = resources.files("service.demo").joinpath("h200_timeline.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def to_new_event(line: dict[str, Any]) -> NewEvent:
    return NewEvent(
        type=line["type"], data=line["data"], occurred_at=line["occurred_at"], id=line["id"], metadata=line["metadata"]
    )


@pytest.fixture(scope="module")
def lines() -> list[dict[str, Any]]:
    return load_lines()


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteEventStore(str(tmp_path / "demo.db"))
    yield s
    s.close()


def append_all(store: SQLiteEventStore, lines: list[dict[str, Any]]) -> list[bool]:
    return [store.append(line["stream"], [to_new_event(line)]).created for line in lines]


def test_lines_have_the_expected_shape(lines):
    assert 15 <= len(lines) <= 30
    for n, line in enumerate(lines, 1):
        assert set(line) == {"stream", "id", "type", "occurred_at", "data", "metadata"}, f"line {n}"


def test_every_line_is_accepted(store, lines):
    assert all(append_all(store, lines))
    recorded = list(store.read_all())
    assert [e.id for e in recorded] == [line["id"] for line in lines]
    assert store.verify().ok


def test_ids_are_unique_canonical_uuid4(lines):
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids))
    for i in ids:
        parsed = uuid.UUID(i)
        assert str(parsed) == i and parsed.version == 4


def test_references_point_backwards(lines):
    seen: set[str] = set()
    refs = 0
    for n, line in enumerate(lines, 1):
        for field in REFERENCE_FIELDS:
            ref = line["data"].get(field)
            if ref is not None:
                refs += 1
                assert ref in seen, f"line {n}: {field} {ref} does not name an earlier line"
        seen.add(line["id"])
    assert refs >= 4


def test_every_line_has_a_source_and_a_content_basis(lines):
    for n, line in enumerate(lines, 1):
        meta = line["metadata"]
        assert meta["recorded_by"] == "policy-timeline demo", f"line {n}"
        assert meta["source"]["title"].strip(), f"line {n}"
        assert meta["content_basis"] in CONTENT_BASES, f"line {n}"


def test_no_purchase_or_delivery(lines):
    assert not {line["type"] for line in lines} & {"PurchaseOrdered", "DeliveryCompleted"}


def test_key_dates(lines):
    approved = [line for line in lines if line["type"] == "PolicyApproved" and line["data"]["policy_id"] == POLICY_ID]
    assert len(approved) == 1 and approved[0]["occurred_at"] == "2025-12-08"
    rules = [line for line in lines if line["type"] == "RulePublished" and line["data"]["policy_id"] == POLICY_ID]
    assert len(rules) == 1
    assert rules[0]["data"]["effective_on"] == "2026-01-15"
    assert rules[0]["data"]["implements"] == approved[0]["id"]


def test_the_large_order_report_is_disputed(lines):
    reports = {line["id"] for line in lines if line["type"] == "OrderIntentReported"}
    disputed = {line["data"]["event_id"] for line in lines if line["type"] == "ReportDisputed"}
    assert reports and reports <= disputed


def test_reimport_records_nothing_new(store, lines):
    assert all(append_all(store, lines))
    head = store.digest()
    assert not any(append_all(store, lines))
    assert store.digest() == head
    assert len(list(store.read_all())) == len(lines)
