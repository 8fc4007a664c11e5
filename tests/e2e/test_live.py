"""GET /v1/events/live through Flask's test client: the messages, where a feed starts and
resumes, its filters, heartbeats, the per-process cap, and its end.

The test client runs one request at a time, so a feed there sends what is recorded and ends;
`STREAMING` tells the app it runs on a threaded server (as gunicorn's gthread worker says),
where a feed follows the log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.api import bearer, wire_event
from flask.testing import FlaskClient

from service import live, usecases
from service.bootstrap import Services

STREAMING = {"wsgi.multithread": True}


def messages(raw: bytes) -> list[dict[str, str]]:
    """SSE messages with data (comments and the retry-only preamble left out)."""
    out = []
    for block in raw.decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        if "data" in fields:
            out.append(fields)
    return out


def record(
    services: Services, n: int, stream: str = "policy-us-h200", event_type: str = "StatementIssued"
) -> list[Any]:
    events = [wire_event(event_type, "2025-12-20", summary=f"statement {i}") for i in range(n)]
    recorded, _ = usecases.append_events(services, stream, events)
    return recorded


class Feed:
    """A streaming response read message by message, closed like a client that goes away."""

    def __init__(self, client: FlaskClient, url: str, **kwargs: Any) -> None:
        self.response = client.get(url, environ_overrides=STREAMING, buffered=False, **kwargs)
        self.chunks: Iterator[bytes] = iter(self.response.response)
        self.buffer = b""

    def next_block(self) -> str:
        while b"\n\n" not in self.buffer:
            self.buffer += next(self.chunks)
        block, _, self.buffer = self.buffer.partition(b"\n\n")
        return block.decode()

    def next_message(self) -> dict[str, str]:
        while True:
            found = messages(self.next_block().encode() + b"\n\n")
            if found:
                return found[0]

    def close(self) -> None:
        self.response.close()


def test_each_new_event_is_a_message_with_its_position_as_id(client: FlaskClient, api_services: Services) -> None:
    recorded = record(api_services, 3)
    response = client.get("/v1/events/live?after=0")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["X-Accel-Buffering"] == "no"
    raw = response.get_data()
    assert raw.startswith(b"retry: 2000\n")
    got = messages(raw)
    assert [m["id"] for m in got] == [str(e.position) for e in recorded]
    assert {m["event"] for m in got} == {"recorded"}
    assert [json.loads(m["data"]) for m in got] == [e.to_dict() for e in recorded]


def test_a_feed_follows_the_log_and_starts_at_the_head_by_default(client: FlaskClient, api_services: Services) -> None:
    record(api_services, 2)
    feed = Feed(client, "/v1/events/live")
    try:
        assert "feed of events after position 2" in feed.next_block()
        later = record(api_services, 2)
        assert [feed.next_message()["id"] for _ in later] == [str(e.position) for e in later]
    finally:
        feed.close()


def test_last_event_id_resumes_and_wins_over_after(client: FlaskClient, api_services: Services) -> None:
    record(api_services, 5)
    got = messages(client.get("/v1/events/live?after=1", headers={"Last-Event-ID": "3"}).get_data())
    assert [m["id"] for m in got] == ["4", "5"]
    assert [m["id"] for m in messages(client.get("/v1/events/live?after=4").get_data())] == ["5"]
    assert messages(client.get("/v1/events/live", headers={"Last-Event-ID": "5"}).get_data()) == []
    empty = client.get("/v1/events/live?after=3", headers={"Last-Event-ID": ""})  # "no event yet": `after` counts
    assert [m["id"] for m in messages(empty.get_data())] == ["4", "5"]


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "1" * 19, "٣"])
def test_a_last_event_id_that_is_not_a_position_is_refused(client: FlaskClient, value: str) -> None:
    response = client.get("/v1/events/live", headers={"Last-Event-ID": value})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert "Last-Event-ID" in response.get_json()["errors"]


def test_the_filters_of_the_log_apply(client: FlaskClient, api_services: Services) -> None:
    record(api_services, 2, stream="policy-us-h200")
    record(api_services, 1, stream="market-cn", event_type="PolicyAnnounced")
    assert len(messages(client.get("/v1/events/live?after=0&stream_prefix=market-").get_data())) == 1
    assert len(messages(client.get("/v1/events/live?after=0&type=StatementIssued").get_data())) == 2
    both = "/v1/events/live?after=0&type=StatementIssued,PolicyAnnounced&occurred_from=2025-12"
    assert len(messages(client.get(both).get_data())) == 3
    assert messages(client.get("/v1/events/live?after=0&occurred_to=2025-11").get_data()) == []
    response = client.get("/v1/events/live?type=NoSuchType")
    assert response.status_code == 422 and "type" in response.get_json()["errors"]


def test_a_quiet_feed_sends_heartbeats(make_api: Any) -> None:
    app = make_api(live_heartbeat_seconds=0.05, live_poll_seconds=0.01)
    feed = Feed(app.test_client(), "/v1/events/live")
    try:
        feed.next_block()
        assert feed.next_block() == ": heartbeat"
    finally:
        feed.close()


def test_feeds_beyond_the_cap_get_a_503_and_a_closed_feed_frees_its_slot(make_api: Any) -> None:
    app = make_api(max_live_feeds=2)
    client = app.test_client()
    feeds = [Feed(client, "/v1/events/live") for _ in range(2)]
    slots: live.FeedSlots = app.extensions["policy_timeline.live_slots"]
    assert slots.active == 2
    refused = client.get("/v1/events/live", environ_overrides=STREAMING)
    assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
    assert refused.headers["Retry-After"] == "1"
    assert refused.get_json()["type"] == "/docs#problem-too-many-feeds" and refused.get_json()["limit"] == 2
    feeds[0].next_block()  # one started, one never read: closing frees both
    for feed in feeds:
        feed.close()
    assert slots.active == 0
    again = Feed(client, "/v1/events/live")
    assert again.next_block().startswith("retry:")
    again.close()
    # a one-shot response frees its slot when it ends, even if nobody closes it
    client.get("/v1/events/live?after=0").get_data()
    assert slots.active == 0


def test_a_feed_ends_after_its_time_and_when_the_process_stops(api_services: Services) -> None:
    timing = live.FeedTiming(heartbeat=10, poll=0.01, max_seconds=0.1)
    started = time.monotonic()
    assert len(list(live.feed(api_services, 0, live.FeedFilter(), timing))) == 1  # the preamble only
    assert 0.1 <= time.monotonic() - started < 5
    stop = threading.Event()
    body = live.feed(api_services, 0, live.FeedFilter(), live.FeedTiming(10, 30, 600), stop=stop)
    next(body)
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert list(body) == [] and time.monotonic() - started < 5


def test_the_feed_needs_a_read_token_when_reads_do(make_api: Any) -> None:
    app = make_api(require_read_token=True)
    client = app.test_client()
    assert client.get("/v1/events/live").status_code == 401
    token = app.extensions["policy_timeline"].tokens.create(["read"], "reader")
    assert client.get("/v1/events/live", headers=bearer(token)).status_code == 200


def test_the_document_describes_the_stream(client: FlaskClient) -> None:
    operation = client.get("/openapi.json").get_json()["paths"]["/v1/events/live"]
    get = operation["get"]
    assert "text/event-stream" in get["responses"]["200"]["content"]
    assert {"503", "422"} <= set(get["responses"])
    assert any(p["name"] == "Last-Event-ID" and p["in"] == "header" for p in operation["parameters"])
