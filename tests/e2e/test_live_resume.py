"""The live feed over a real server on a loopback port while another process appends 10,000
events in batches: a client that disconnects midway and resumes with Last-Event-ID misses
nothing and sees nothing twice; the server frees the feed's slot when the client goes.

Given an empty log, a threaded werkzeug server and a child process appending 100 batches of
100 events → when a client reads part of the feed, drops the connection while the appends go
on, and reconnects with the last id it got → then it has every position 1..10,000 once, in
order, each with the payload the child wrote."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

pytestmark = pytest.mark.slow

TOTAL, BATCH = 10_000, 100
DEADLINE = 60.0
APPENDER = textwrap.dedent(
    """
    import sys, time
    from events import NewEvent, SQLiteEventStore
    store = SQLiteEventStore(sys.argv[1], synchronous="NORMAL")
    total, batch = int(sys.argv[2]), int(sys.argv[3])
    for start in range(0, total, batch):
        store.append("feed-test", [
            NewEvent("StatementIssued", {"speaker": "S", "organisation": "O", "summary": f"n={n}"}, "2025-12-20")
            for n in range(start, start + batch)
        ])
        time.sleep(0.02)  # spread the appends over the client's whole run, its disconnection included
    store.close()
    """
)


class Server:
    """The app on a threaded werkzeug server (wsgi.multithread, like gunicorn's gthread)."""

    def __init__(self, app: Flask) -> None:
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.thread.join(10)


def sse(response: http.client.HTTPResponse) -> Iterator[dict[str, str]]:
    """The messages of a feed, as they arrive (comments skipped)."""
    fields: dict[str, str] = {}
    while True:
        line = response.readline()
        if not line:
            return
        text = line.decode().rstrip("\r\n")
        if text == "":
            if "data" in fields:
                yield fields
            fields = {}
        elif not text.startswith(":"):
            name, _, value = text.partition(":")
            fields[name] = value.removeprefix(" ")


def open_feed(port: int, last_event_id: str | None = None) -> tuple[http.client.HTTPConnection, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    conn.request("GET", "/v1/events/live?after=0&stream_prefix=feed-", headers=headers)
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/event-stream")
    return conn, response


def test_a_client_that_reconnects_with_last_event_id_misses_nothing_and_sees_nothing_twice(
    make_api: Any, db_path: Path
) -> None:
    app = make_api(live_poll_seconds=0.05, live_heartbeat_seconds=0.2)
    app.extensions["policy_timeline"].store.digest()  # the database exists before the child opens it
    server = Server(app)
    child = subprocess.Popen([sys.executable, "-c", APPENDER, str(db_path), str(TOTAL), str(BATCH)])
    started = time.monotonic()
    try:
        seen: list[tuple[int, str]] = []
        conn, response = open_feed(server.port)
        for message in sse(response):
            event = json.loads(message["data"])
            assert message["id"] == str(event["position"]) and message["event"] == "recorded"
            seen.append((event["position"], event["data"]["summary"]))
            if len(seen) == 3_000:
                break
        response.close()  # the client goes away mid-stream (the response holds the socket)
        conn.close()
        cut = len(seen)
        slots = app.extensions["policy_timeline.live_slots"]
        while slots.active and time.monotonic() - started < DEADLINE:
            time.sleep(0.05)  # the server notices at its next write (a heartbeat at most)
        assert slots.active == 0, "the dropped feed still holds its slot"
        appended_meanwhile = child.poll() is None

        conn, response = open_feed(server.port, last_event_id=str(seen[-1][0]))
        for message in sse(response):
            event = json.loads(message["data"])
            seen.append((event["position"], event["data"]["summary"]))
            if len(seen) == TOTAL:
                break
            assert time.monotonic() - started < DEADLINE, f"only {len(seen)} events after {DEADLINE} s"
        response.close()
        conn.close()
        assert child.wait(DEADLINE) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        server.stop()
    positions = [p for p, _ in seen]
    assert positions == list(range(1, TOTAL + 1)), "a gap or a duplicate"
    assert [s for _, s in seen] == [f"n={n}" for n in range(TOTAL)]
    assert 0 < cut < TOTAL and appended_meanwhile, "the client should disconnect while the child still appends"
    assert time.monotonic() - started < DEADLINE
