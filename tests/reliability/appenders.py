"""HTTP clients of the reliability tests: append batches with client ids over loopback and
record what the server answered (importable by 'spawn' children: stdlib and fixtures only).

An `Outcome` is one POST: the ids it sent, and the status (None when no answer came back:
the connection was refused or cut, e.g. by a SIGKILL). Only 200/201 acknowledge a batch."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from fixtures.api import wire_event
from fixtures.sample_events import new_id

ACKNOWLEDGED = (200, 201)
RACE_STREAM = "race"
SHARED_STREAM = "shared"


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case
    body: Any  # parsed JSON, else text


def call(port: int, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 60) -> Reply:
    """One request on a new connection to 127.0.0.1:port. Raises OSError or
    http.client.HTTPException when no answer comes back."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        names = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    kind = names.get("content-type", "")
    parsed = json.loads(raw) if "json" in kind and raw else raw.decode("utf-8", "replace")
    return Reply(response.status, names, parsed)


@dataclass
class Outcome:
    """One append as the client saw it."""

    stream: str
    ids: list[str]
    expected_version: int | str | None = None
    status: int | None = None  # None: no answer
    problem: str | None = None  # the problem type of a refusal
    retry_after: str | None = None
    content_type: str | None = None
    detail: str = ""
    versions: list[int] = field(default_factory=list)  # of the recorded events, when acknowledged
    extra: dict[str, Any] = field(default_factory=dict)  # expected_version/actual_version of a 409

    @property
    def acknowledged(self) -> bool:
        return self.status in ACKNOWLEDGED


def make_batch(rng: random.Random, tag: str, size: int | None = None, pad: int = 0) -> list[dict[str, Any]]:
    """A valid batch of 1-5 events that the projections care about: an approval, then
    purchases, announcements and a dispute or retraction of that approval (references within
    the batch). `pad` adds that many characters to the approval's summary."""
    size = rng.randint(1, 5) if size is None else size
    day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    anchor = new_id()
    summary = f"approval {tag} " + "x" * pad
    events = [wire_event("PolicyApproved", day, id=anchor, policy_id=f"policy-{tag}", summary=summary)]
    others = [
        lambda: wire_event("PurchaseOrdered", day, id=new_id(), quantity=rng.randint(1, 100)),
        lambda: wire_event("PolicyAnnounced", day, id=new_id(), policy_id=f"policy-{tag}"),
        lambda: wire_event("ReportDisputed", day, id=new_id(), event_id=anchor, by="tests", summary="contested"),
        lambda: wire_event("EventRetracted", day, id=new_id(), event_id=anchor, reason="reported in error"),
    ]
    events.extend(rng.choice(others)() for _ in range(size - 1))
    return events


def append(
    port: int, token: str, stream: str, events: list[dict[str, Any]], expected: int | str | None = None
) -> Outcome:
    """POST the batch and record the answer (never raises for a missing answer)."""
    outcome = Outcome(stream, [e["id"] for e in events], expected)
    body: dict[str, Any] = {"events": events}
    if expected is not None:
        body["expected_version"] = expected
    try:
        reply = call(port, "POST", f"/v1/streams/{stream}/events", body, token)
    except (OSError, http.client.HTTPException) as e:
        outcome.detail = f"no answer: {type(e).__name__}: {e}"
        return outcome
    outcome.status = reply.status
    outcome.content_type = reply.headers.get("content-type")
    outcome.retry_after = reply.headers.get("retry-after")
    if isinstance(reply.body, dict):
        if outcome.acknowledged:
            outcome.versions = [e["version"] for e in reply.body.get("events", [])]
        else:
            outcome.problem = reply.body.get("type")
            outcome.detail = str(reply.body.get("detail", ""))
            outcome.extra = {k: reply.body[k] for k in ("expected_version", "actual_version") if k in reply.body}
    else:
        outcome.detail = str(reply.body)[:500]
    return outcome


def append_until(port: int, token: str, tag: str, stop: threading.Event, outcomes: list[Outcome], seed: int) -> None:
    """A load thread: append batches to its own stream (expecting its version) and to the
    shared one (any version) until `stop` is set; after the server stops answering, pause."""
    rng = random.Random(seed)
    own, version = f"load-{tag}", None
    while not stop.is_set():
        if rng.random() < 0.5:
            outcome = append(port, token, SHARED_STREAM, make_batch(rng, tag))
        else:
            outcome = append(port, token, own, make_batch(rng, tag), version)
            # after a missing answer the version is unknown: append with "any" until known again
            version = outcome.versions[-1] if outcome.acknowledged else None
        outcomes.append(outcome)
        if outcome.status is None:
            stop.wait(0.05)


def unexpected(outcome: Outcome, allowed: tuple[int, ...]) -> str | None:
    """Why this answer breaks the contract (None if it keeps it): a status not allowed, a
    500, "locked" leaking out, a 503 without Retry-After, or a refusal not in problem+json."""
    if outcome.status is None or outcome.acknowledged:
        return None
    if outcome.status not in allowed:
        return f"status {outcome.status}"
    if "locked" in outcome.detail.lower():
        return "'database is locked' reached the client"
    if outcome.content_type != "application/problem+json" or not outcome.problem:
        return f"not problem+json: {outcome.content_type}"
    if outcome.status == 503 and not outcome.retry_after:
        return "503 without Retry-After"
    return None


# -- the contention test's processes ----------------------------------------------------------------
def contend(port: int, token: str, worker: int, duration: float, out_path: str) -> None:
    """A spawn child: for `duration` seconds, race the others on RACE_STREAM (read its version,
    append expecting it), append to its own stream expecting its version, and to
    SHARED_STREAM with any version; then write every Outcome to `out_path` as JSON."""
    rng = random.Random(worker)
    own, own_version = f"own-{worker}", 0
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.4:
            try:
                version = call(port, "GET", f"/v1/streams/{RACE_STREAM}/events?limit=1").body["version"]
            except (OSError, http.client.HTTPException, TypeError, KeyError) as e:
                outcomes.append(Outcome(RACE_STREAM, [], detail=f"read failed: {e}", status=-1))
                continue
            outcome = append(port, token, RACE_STREAM, make_batch(rng, f"race{worker}", size=1), version)
        elif roll < 0.7:
            outcome = append(port, token, own, make_batch(rng, f"own{worker}"), own_version)
            if outcome.acknowledged:
                own_version = outcome.versions[-1]
        else:
            outcome = append(port, token, SHARED_STREAM, make_batch(rng, f"shared{worker}"))
        outcomes.append(outcome)
    Path(out_path).write_text(json.dumps([asdict(o) for o in outcomes]))


def load_outcomes(path: Path) -> list[Outcome]:
    return [Outcome(**item) for item in json.loads(path.read_text())]
