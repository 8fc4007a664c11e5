"""`timeline`: every event in occurred_at order, filtered, with retractions and disputes marked.

Given a hand-written log on a real SQLite file → when asked on a date (live, or as of an earlier
log position) → then this page. Expected values are written out, never computed.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fixtures.tamper import open_raw
from projection_helpers import Timeline as Log

from events import NewEvent
from projections import ProjectionEngine
from projections.builtin import timeline as timeline_module
from projections.builtin.timeline import Timeline

SOURCE = {"title": "Truth Social post", "url": "https://example.org/post", "publisher": "White House"}


class StreamLog(Log):
    """The shared helper, plus events on a chosen stream with metadata."""

    def put(self, stream: str, event_type: str, occurred_at: str, metadata: dict | None = None, **data: Any) -> str:
        self.clock.advance(hours=1)
        event = NewEvent(event_type, data, occurred_at, metadata=metadata or {})
        return self.store.append(stream, [event]).events[0].id

    def positions(self, on: str = "2026-06-30", **params: Any) -> list[int]:
        return [item["position"] for item in self.answer(on, **params)]


@pytest.fixture
def log(store, clock) -> StreamLog:
    return StreamLog(store, clock, Timeline())


@pytest.fixture
def ids(log: StreamLog) -> dict[str, str]:
    """Positions 1-10, appended in this order (occurred_at order differs)."""
    h200 = {"subject": "NVIDIA H200", "counterparty": "CN"}
    us = {"jurisdiction": "US", "authority": "White House", **h200}
    ids = {
        "announced": log.put(
            "policy-us", "PolicyAnnounced", "2025-12-08", policy_id="us-h200", summary="Sales allowed", **us
        ),
        "approved": log.put(
            "policy-us", "PolicyApproved", "2025-12-08", {"source": SOURCE, "content_basis": "official"},
            policy_id="us-h200", **us,
        ),
        "statement": log.put(
            "policy-cn", "StatementIssued", "2025", speaker="Spokesperson", organisation="MOFCOM",
            summary="Opposes the measures", subject="AI chips", jurisdiction="CN",
        ),
        "intent": log.put(
            "market", "OrderIntentReported", "2025-12", buyer="CN firms", subject="NVIDIA H200",
            quantity=2_000_000, buyer_jurisdiction="CN",
        ),
        "customs": log.put(
            "policy-cn", "CountermeasureIssued", "2026-01-13T08:30:00Z", jurisdiction="CN", authority="Customs",
            subject="NVIDIA H200", measure="H200 not permitted", formality="informal_guidance",
        ),
    }  # fmt: skip
    ids["dispute"] = log.put(
        "market", "ReportDisputed", "2026-01-29", event_id=ids["intent"], by="NVIDIA", summary="No orders received"
    )
    ids["purchase"] = log.put(
        "market", "PurchaseOrdered", "2026-02-10", buyer="ByteDance", buyer_jurisdiction="CN",
        subject="NVIDIA H200", quantity=1000,
    )  # fmt: skip
    ids["retraction"] = log.put(
        "market", "EventRetracted", "2026-06-01", event_id=ids["purchase"], reason="reported in error"
    )
    ids["dispute2"] = log.put(
        "policy-cn", "ReportDisputed", "2026-03-01", event_id=ids["customs"], by="MOFCOM", summary="No such instruction"
    )
    ids["retraction2"] = log.put(
        "policy-cn", "EventRetracted", "2026-06-01", event_id=ids["dispute2"], reason="duplicate"
    )
    return ids


def test_every_event_is_listed_in_occurred_order_with_title_and_facets(log, ids):
    result = log.answer("2026-06-30")
    assert [(i["position"], i["title"], i["subject"], i["jurisdiction"], i["actor"]) for i in result] == [
        (3, "StatementIssued: AI chips (MOFCOM)", "AI chips", "CN", "MOFCOM"),
        (4, "OrderIntentReported: 2,000,000 × NVIDIA H200 (CN firms)", "NVIDIA H200", "CN", "CN firms"),
        (1, "PolicyAnnounced: NVIDIA H200 to CN (White House)", "NVIDIA H200", "US", "White House"),
        (2, "PolicyApproved: NVIDIA H200 to CN (White House)", "NVIDIA H200", "US", "White House"),
        (5, "CountermeasureIssued: NVIDIA H200: H200 not permitted (Customs)", "NVIDIA H200", "CN", "Customs"),
        # a dispute and a retraction take the subject and jurisdiction of their target
        (6, "ReportDisputed: No orders received (NVIDIA)", "NVIDIA H200", "CN", "NVIDIA"),
        (7, "PurchaseOrdered: 1,000 × NVIDIA H200 (ByteDance)", "NVIDIA H200", "CN", "ByteDance"),
        (9, "ReportDisputed: No such instruction (MOFCOM)", "NVIDIA H200", "CN", "MOFCOM"),
        (8, "EventRetracted: reported in error", "NVIDIA H200", "CN", None),
        (10, "EventRetracted: duplicate", "NVIDIA H200", "CN", None),
    ]  # fmt: skip


def test_an_item_carries_its_envelope_source_and_data(log, ids):
    approved = next(i for i in log.answer("2026-06-30") if i["position"] == 2)
    assert approved == {
        "position": 2,
        "id": ids["approved"],
        "stream": "policy-us",
        "type": "PolicyApproved",
        "occurred_at": "2025-12-08",
        "recorded_at": "2026-01-01T11:00:00.000000Z",
        "title": "PolicyApproved: NVIDIA H200 to CN (White House)",
        "subject": "NVIDIA H200",
        "jurisdiction": "US",
        "actor": "White House",
        "source": {"title": "Truth Social post", "url": "https://example.org/post", "publisher": "White House"},
        "content_basis": "official",
        "data": {
            "policy_id": "us-h200",
            "jurisdiction": "US",
            "authority": "White House",
            "subject": "NVIDIA H200",
            "counterparty": "CN",
        },
        "retracted": False,
        "retraction": None,
        "disputes": [],
    }
    first = log.answer("2026-06-30")[0]
    assert (first["source"], first["content_basis"]) == (None, None)


def test_a_retracted_event_is_flagged_from_the_retraction_on(log, ids):
    purchase = next(i for i in log.answer("2026-06-30") if i["position"] == 7)
    assert (purchase["retracted"], purchase["retraction"]) == (
        True,
        {"event_id": ids["retraction"], "reason": "reported in error", "position": 8},
    )
    before = next(i for i in log.answer("2026-06-30", at_position=7) if i["position"] == 7)
    assert (before["retracted"], before["retraction"]) == (False, None)
    # leaving retracted events out: the retraction itself is still an event of the log
    assert log.positions(include_retracted="false") == [3, 4, 1, 2, 5, 6, 8, 10]
    assert log.positions(at_position=7, include_retracted="false") == [3, 4, 1, 2, 5, 6, 7]


def test_a_disputed_claim_lists_its_disputes_that_had_occurred_and_stand(log, ids):
    def disputes(on: str, position: int, at_position: int | None = None) -> list[dict]:
        return next(i for i in log.answer(on, at_position=at_position) if i["position"] == position)["disputes"]

    nvidia = {
        "dispute_id": ids["dispute"],
        "event_id": ids["intent"],
        "by": "NVIDIA",
        "summary": "No orders received",
        "occurred_at": "2026-01-29",
        "position": 6,
    }
    assert disputes("2026-06-30", 4) == [nvidia]
    assert disputes("2026-01-28", 4) == []  # the dispute had not happened yet
    # a retracted dispute no longer counts, but it did before its retraction was recorded
    assert disputes("2026-06-30", 5) == []
    assert disputes("2026-06-30", 5, at_position=9) == [
        {
            "dispute_id": ids["dispute2"],
            "event_id": ids["customs"],
            "by": "MOFCOM",
            "summary": "No such instruction",
            "occurred_at": "2026-03-01",
            "position": 9,
        }
    ]


def test_on_lists_only_events_whose_period_had_started(log, ids):
    assert log.positions("2026-01-13") == [3, 4, 1, 2, 5]
    assert log.positions("2025-12-07") == [3, 4]  # "2025-12" started on 2025-12-01
    assert log.positions("2025-11-30") == [3]
    assert log.positions("2024-12-31") == []


def test_as_of_a_position_hides_later_events(log, ids):
    assert log.positions(at_position=0) == []
    assert log.positions(at_position=4) == [3, 4, 1, 2]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"subject": "  nvidia   H200 "}, [4, 1, 2, 5, 6, 7, 9, 8, 10]),
        ({"jurisdiction": "us"}, [1, 2]),
        ({"actor": "mofcom"}, [3, 9]),
        ({"stream": "policy-cn"}, [3, 5, 9, 10]),
        ({"stream": "policy"}, []),
        ({"stream_prefix": "policy-"}, [3, 1, 2, 5, 9, 10]),
        ({"type": "PolicyApproved,StatementIssued"}, [3, 2]),
        ({"from": "2025-12-08"}, [1, 2, 5, 6, 7, 9, 8, 10]),
        ({"from": "2025-01-01", "to": "2025-12-01"}, [3, 4]),
        ({"from": "2025-01-02", "to": "2025-12-01"}, [4]),
        ({"to": "2026-01-13"}, [3, 4, 1, 2, 5]),
        ({"limit": 2}, [3, 4]),
        ({"limit": 2, "offset": 2}, [1, 2]),
        ({"offset": 9}, [10]),
        ({"jurisdiction": "CN", "type": "ReportDisputed", "actor": "NVIDIA"}, [6]),
    ],
)
def test_filters(log, ids, params, expected):
    assert log.positions(**params) == expected


def test_every_filter_gives_the_same_page_whichever_index_reads_it(log, ids):
    """With limit 1 a type or stream filter matching four events is read along the sort order,
    with limit 500 through the log's index; a subject filter always through its own index."""
    for params in ({"subject": "NVIDIA H200"}, {"type": "ReportDisputed,EventRetracted"}, {"stream": "market"}):
        assert log.positions(limit=1, **params) == log.positions(**params)[:1]
        assert log.positions(limit=1, offset=1, **params) == log.positions(**params)[1:2]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"include_retracted": "maybe"}, "include_retracted"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "from"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_rejected(log, ids, params, bad):
    log.assert_rejected(params, bad)


def test_rebuild_gives_the_same_answers(log, ids):
    log.assert_rebuild_gives_the_same_answer("2026-06-30")
    log.assert_rebuild_gives_the_same_answer("2026-06-30", subject="NVIDIA H200", include_retracted="false")
    assert log.engine.replay_compare("timeline", at_position=7)["match"] is True


def test_custom_types_are_listed(log, store):
    fields = {"title": {"type": "string", "required": True}, "jurisdiction": {"type": "string"}}
    store.register_type({"name": "TariffChanged", "fields": {**fields, "authority": {"type": "integer"}}})
    log.put(
        "tariffs", "TariffChanged", "2026-04-01", title="Duty on gallium raised to 25%", jurisdiction="EU", authority=7
    )
    (item,) = log.answer("2026-06-30")
    # only texts name an actor: an integer `authority` does not
    assert (item["type"], item["title"], item["jurisdiction"], item["actor"]) == (
        "TariffChanged",
        "TariffChanged: Duty on gallium raised to 25%",
        "EU",
        None,
    )
    assert item["data"] == {"title": "Duty on gallium raised to 25%", "jurisdiction": "EU", "authority": 7}
    assert log.positions(jurisdiction="eu") == [1]


def test_old_schema_versions_are_shown_upcast(open_store, db_path: Path, clock):
    fixture = Path(__file__).parents[1] / "fixtures" / "purchase_ordered_v1.jsonl"
    rows = [json.loads(line) for line in fixture.read_text(encoding="utf-8").splitlines()]
    open_store().close()
    with open_raw(db_path) as conn:
        columns = list(rows[0])
        conn.executemany(
            f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [[r[c] for c in columns] for r in rows],
        )
    log = StreamLog(open_store(), clock, Timeline())
    order = next(i for i in log.answer("2026-06-30") if i["position"] == 2)
    assert (order["title"], order["jurisdiction"], order["data"]) == (
        "PurchaseOrdered: 250 × gallium (Acme Metals)",
        "US",
        {"buyer": "Acme Metals", "buyer_jurisdiction": "US", "subject": "gallium", "quantity": 250, "value": 41250.5},
    )
    assert order["source"] == {
        "title": "Customs filing 2025/118",
        "url": "https://example.org/filings/118",
        "publisher": None,
    }


def test_a_long_catch_up_builds_the_indexes_once_at_the_end(store, clock, monkeypatch):
    """Far behind the head, batches go in without indexes; they are built near the head."""
    monkeypatch.setattr(timeline_module, "BULK_MIN", 4)
    for n in range(12):
        clock.advance(minutes=1)
        store.append(
            f"s{n % 3}",
            [
                NewEvent(
                    "StatementIssued",
                    {"speaker": "S", "organisation": f"O{n % 2}", "summary": "x"},
                    f"2026-0{1 + n % 9}",
                )
            ],
        )
    engine = ProjectionEngine(store, [Timeline()], clock, batch_size=3)
    engine.setup()
    index_counts = []
    real_write = Timeline.write

    def write(self, conn, prefix, events, lookup):
        real_write(self, conn, prefix, events, lookup)
        index_counts.append(
            conn.execute(f"SELECT count(*) FROM sqlite_master WHERE name LIKE '{prefix}items_%'").fetchone()[0]
        )

    monkeypatch.setattr(Timeline, "write", write)
    engine.catch_up()
    # positions 1-3 and 4-6 leave ≥ 4 behind: no indexes; 7-9 leave 3: built; 10-12 keep them
    assert index_counts == [0, 0, 4, 4]

    def positions(**params: str) -> list[int]:
        return [i["position"] for i in engine.query("timeline", on=date(2026, 12, 31), params=params).result]

    assert positions() == [1, 10, 2, 11, 3, 12, 4, 5, 6, 7, 8, 9]
    assert positions(actor="O0") == [1, 11, 3, 5, 7, 9]
    engine.rebuild("timeline")
    assert index_counts[4:] == [0, 0, 4, 4]
    assert positions() == [1, 10, 2, 11, 3, 12, 4, 5, 6, 7, 8, 9]
    assert positions(actor="O0") == [1, 11, 3, 5, 7, 9]
    assert engine.replay_compare("timeline")["match"] is True
