"""Hostile requests, written by hand: each is refused with a 4xx problem+json whose `detail`
says what is wrong, never a 5xx or a stack trace, and writes nothing to the database.

Bodies (deep nesting, 10 MB, bad UTF-8, NUL, huge integers, duplicate keys, unknown fields,
impossible dates, wrong content types, NaN), path segments (SQL and path fragments, 10k
characters) and headers, on every mutating route; then every documented query parameter of
every GET operation swept with the same kind of values.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from fixtures.api import bearer, wire_event
from flask import Flask
from flask.testing import FlaskClient
from security_helpers import START, WriteWatch, assert_no_trace, assert_problem, build_app
from werkzeug.test import EnvironBuilder

from events import FixedClock
from service.app import create_app

APPEND = "/v1/streams/s/events"
MB = 1024 * 1024
HUGE = {"2**64": 2**64, "10**400": 10**400, "-2**63-1": -(2**63) - 1}
SQL = "x'; DROP TABLE events;--"
BAD_DATES = ("0000-00-00", "9999-12-31T24:00:00Z", "2026-02-30", "2026-13-01", "2026-01-01T00:00:60Z")
ABSURD_OFFSETS = (
    "2026-01-01T00:00:00+99:99",
    "2026-01-01T00:00:00+24:00",
    "9999-12-31T23:59:59-23:59",  # beyond year 9999 in UTC
    "0001-01-01T00:00:00+23:59",  # before year 1 in UTC
)


@dataclass(frozen=True)
class Hostile:
    """A request and how it must be refused."""

    id: str
    status: int | tuple[int, ...]
    detail: str
    body: bytes | None = None
    url: str = APPEND
    method: str = "POST"
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def raw(value: Any) -> bytes:
    return json.dumps(value).encode()


def batch(*events: dict[str, Any], **extra: Any) -> bytes:
    return raw({"events": list(events), **extra})


def nested(depth: int, kind: str = "list") -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


def with_data(text: str, metadata: str | None = None) -> bytes:
    """One PolicyAnnounced event whose `data` (or `metadata`) is this JSON text."""
    meta = f',"metadata":{metadata}' if metadata is not None else ""
    return f'{{"events":[{{"type":"PolicyAnnounced","occurred_at":"2026","data":{text}{meta}}}]}}'.encode()


def append_cases() -> Iterator[Hostile]:
    event = wire_event()
    for kind in ("list", "obj"):
        deep = nested(100_000, kind)
        yield Hostile(f"100k-deep-{kind}-in-data", 400, "nested too deeply", with_data(f'{{"summary":{deep}}}'))
        yield Hostile(f"100k-deep-{kind}-in-metadata", 400, "nested too deeply", with_data("{}", f'{{"x":{deep}}}'))
        yield Hostile(f"100k-deep-{kind}-as-body", 400, "nested too deeply", deep.encode())
    yield Hostile("10MB-body", 413, "exceeds the limit", b'{"events":[' + b" " * (10 * MB) + b"]}")
    yield Hostile("100k-events", 413, "exceeds the limit", batch(*[event] * 100_000))
    yield Hostile("10001-empty-events", 422, "events", b'{"events":[' + b",".join([b"{}"] * 10_001) + b"]}")
    yield Hostile("no-events", 422, "events", batch())
    yield Hostile("invalid-utf8", 400, "not valid UTF-8", b'{"events":[{"type":"\xff\xfe"}]}')
    yield Hostile("overlong-utf8-nul", 400, "not valid UTF-8", b'{"events":[{"type":"\xc0\x80"}]}')
    yield Hostile("lone-surrogate-in-data", 400, "surrogate", with_data('{"summary":"\\ud800"}'))
    yield Hostile("lone-surrogate-in-key", 400, "surrogate", with_data('{"\\udfff":"x"}'))
    yield Hostile("nul-in-data", 422, "NUL", batch(wire_event(summary="a\x00b")))
    yield Hostile("nul-in-metadata-key", 422, "NUL", batch(wire_event(metadata={"a\x00": "x"})))
    yield Hostile("nul-in-id", 422, "NUL", batch(wire_event(id="a\x00")))
    yield Hostile("nul-in-type", 422, "NUL", batch({**event, "type": "Policy\x00Announced"}))
    yield Hostile("nul-in-stream", 422, "stream", batch(event), url="/v1/streams/a%00b/events")
    for name, number in HUGE.items():
        yield Hostile(f"{name}-in-data", 422, "quantity", batch(wire_event("PurchaseOrdered", quantity=number)))
        yield Hostile(f"{name}-in-metadata", 422, "metadata", batch(wire_event(metadata={"n": number})))
        yield Hostile(f"{name}-as-expected_version", 422, "expected_version", batch(event, expected_version=number))
        yield Hostile(f"{name}-as-schema_version", 422, "schema_version", batch(wire_event(schema_version=number)))
        yield Hostile(f"{name}-in-If-Match", 422, "If-Match", batch(event), headers={"If-Match": str(number)})
    yield Hostile("5000-digit-integer", 400, "digits", with_data('{"n":1' + "0" * 5000 + "}"))
    for text in ("²", "１", '"٣"', "*", 'W/"1"', "-0", "\x00", ""):
        yield Hostile(f"If-Match-{text!r}", 422, "If-Match", batch(event), headers={"If-Match": text})
    for literal in ("NaN", "Infinity", "-Infinity"):
        yield Hostile(f"{literal}-literal", 400, "is not JSON", with_data(f'{{"n":{literal}}}'))
    yield Hostile("duplicate-top-key", 400, "duplicate key 'events'", b'{"events":[],"events":[]}')
    yield Hostile("duplicate-data-key", 400, "duplicate key 'summary'", with_data('{"summary":"a","summary":"b"}'))
    yield Hostile("duplicate-metadata-key", 400, "duplicate key 'source'", with_data("{}", '{"source":1,"source":2}'))
    yield Hostile("unknown-top-field", 422, "extra", batch(event, extra=1))
    yield Hostile("unknown-event-field", 422, "extra", batch({**event, "extra": 1}))
    yield Hostile("unknown-data-field", 422, "Unknown field", batch(wire_event(not_a_field=1)))
    yield Hostile("unknown-type", 422, "type", batch(wire_event("NoSuchType")))
    for text in BAD_DATES + ABSURD_OFFSETS + ("2026-01-01T00:00:00", "0000", "10000-01-01", "2026-1-1"):
        yield Hostile(f"occurred_at-{text}", 422, "occurred_at", batch(wire_event(occurred_at=text)))
    for mimetype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        yield Hostile(f"content-type-{mimetype}", 415, "application/json", batch(event), content_type=mimetype)
    yield Hostile("charset-latin-1", 415, "UTF-8", batch(event), content_type="application/json; charset=latin-1")
    yield Hostile("empty-body", 400, "empty", b"")
    yield Hostile("blank-body", 400, "empty", b" \n\t ")
    for text in ("[]", '"events"', "null", "1", "true", f"[{json.dumps({'events': [event]})}]"):
        yield Hostile(f"body-{text[:10]}", 422, "body", text.encode())
    yield Hostile("truncated-json", 400, "malformed JSON", batch(event)[:-3])
    yield Hostile("accept-xml", 406, "Accept", batch(event), headers={"Accept": "application/xml"})
    yield Hostile("accept-json-q0", 406, "Accept", batch(event), headers={"Accept": "application/json;q=0"})


def path_cases() -> Iterator[Hostile]:
    event = batch(wire_event())
    segments = {
        "sql": (quote(SQL, safe=""), 422),
        "dotdot": ("../../etc/passwd", 404),
        "encoded-dotdot": ("%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404),
        "encoded-slash": ("a%2fb", 404),
        "nul": ("%00", 422),
        "10k": ("a" * 10_000, 422),
        "dash-first": ("-s", 422),
        "dot": (".", 422),  # dot segments: a client would resolve them away
        "dot-dot": ("..", 422),
        "unicode": (quote("流", safe=""), 422),
    }
    for name, (segment, status) in segments.items():
        yield Hostile(f"append-to-{name}", status, "", event, url=f"/v1/streams/{segment}/events")
        # any segment that routes names an unknown projection
        yield Hostile(f"rebuild-{name}", 404, "", None, url=f"/v1/projections/{segment}/rebuild", content_type=None)
    yield Hostile("replay-sql", 404, "projection", raw({"projection": SQL}), url="/v1/audit/replay")


def other_body_cases() -> Iterator[Hostile]:
    types = "/v1/event-types"
    spec = {"name": "CustomThing", "fields": {"note": {"type": "string"}}}
    deep = f'{{"name":"X","fields":{nested(100_000)}}}'.encode()
    yield Hostile("type-100k-deep", 400, "nested too deeply", deep, types)
    yield Hostile("type-nul-name", 422, "NUL", raw({**spec, "name": "Custom\x00Thing"}), types)
    yield Hostile("type-sql-field", 422, "fields", raw({**spec, "fields": {SQL: {"type": "string"}}}), types)
    yield Hostile("type-10k-field", 422, "fields", raw({**spec, "fields": {"a" * 10_000: {"type": "string"}}}), types)
    huge = {"n": {"type": "string", "required": 2**64}}
    yield Hostile("type-huge-required", 422, "required", raw({**spec, "fields": huge}), types)
    yield Hostile("type-unknown-field", 422, "extra", raw({**spec, "extra": 1}), types)
    twice = b'{"name":"CustomThing","name":"Other","fields":{}}'
    yield Hostile("type-duplicate-key", 400, "duplicate key", twice, types)
    surrogate = b'{"name":"CustomThing","description":"\\ud800","fields":{}}'
    yield Hostile("type-surrogate", 400, "surrogate", surrogate, types)
    yield Hostile("type-content-type", 415, "application/json", raw(spec), types, content_type="text/plain")
    yield Hostile("type-10MB", 413, "exceeds the limit", b" " * (10 * MB), types)
    replay = "/v1/audit/replay"
    yield Hostile("replay-nul", 422, "NUL", raw({"projection": "timeline\x00"}), replay)
    yield Hostile("replay-unknown-field", 422, "extra", raw({"projection": "timeline", "extra": 1}), replay)
    for text in BAD_DATES + ABSURD_OFFSETS:
        yield Hostile(f"replay-as_of-{text}", 422, "as_of", raw({"projection": "timeline", "as_of": text}), replay)
    yield Hostile("replay-not-object", 422, "body", b"[]", replay)
    yield Hostile("refresh-accept-xml", 406, "Accept", None, "/v1/projections/refresh", headers={"Accept": "text/xml"})


CASES = [*append_cases(), *path_cases(), *other_body_cases()]


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = build_app(tmp_path_factory.mktemp("hostile") / "log.db", FixedClock(START))
    yield app
    app.extensions["policy_timeline"].close()


@pytest.fixture(scope="module")
def admin(hostile_app: Flask) -> dict[str, str]:
    return bearer(hostile_app.extensions["policy_timeline"].tokens.create(["admin"], "hostile-admin"))


@pytest.fixture
def watch(hostile_app: Flask) -> Iterator[WriteWatch]:
    watch = WriteWatch(hostile_app.extensions["policy_timeline"].config.db)
    yield watch
    watch.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request_is_refused_clearly_and_writes_nothing(
    case: Hostile, hostile_app: Flask, admin: dict[str, str], watch: WriteWatch
) -> None:
    client = hostile_app.test_client()
    response = client.open(
        case.url, method=case.method, data=case.body, content_type=case.content_type, headers={**admin, **case.headers}
    )
    assert_problem(response, case.status, detail=case.detail, what=case.id)
    watch.assert_nothing_written(case.id)


def test_a_10MB_body_without_content_length_is_413(
    hostile_app: Flask, admin: dict[str, str], watch: WriteWatch
) -> None:
    """Chunked upload (no Content-Length): the body is cut at the limit and refused, not parsed."""
    environ = EnvironBuilder(path=APPEND, method="POST", headers=admin, content_type="application/json").get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": io.BytesIO(b'{"events":[' + b" " * (10 * MB) + b"]}"), "wsgi.input_terminated": True})
    response = hostile_app.test_client().open(environ)
    assert_problem(response, 413, detail="exceeds the limit")
    watch.assert_nothing_written()


@pytest.mark.parametrize("where", ["data", "metadata", "metadata-top", "event-type", "replay"])
def test_nesting_up_to_the_parsers_limit_is_refused_not_a_500(
    where: str, hostile_app: Flask, admin: dict[str, str], watch: WriteWatch
) -> None:
    """Every depth near the recursion limit: deep enough to pass the JSON parser but to overflow a
    recursive walk after it (metadata's memo key did, at about 970 levels)."""
    client = hostile_app.test_client()

    requests: dict[str, Callable[[str], tuple[str, bytes]]] = {
        "data": lambda inner: (APPEND, with_data(f'{{"summary":{inner}}}')),
        "metadata": lambda inner: (APPEND, with_data("{}", f'{{"x":{inner}}}')),
        "metadata-top": lambda inner: (APPEND, with_data("{}", inner)),
        "event-type": lambda inner: ("/v1/event-types", f'{{"name":"Deep","fields":{{"a":{inner}}}}}'.encode()),
        "replay": lambda inner: ("/v1/audit/replay", f'{{"projection":{inner}}}'.encode()),
    }

    def send(depth: int) -> Any:
        url, body = requests[where](nested(depth, "obj" if depth % 2 else "list"))
        return client.post(url, data=body, content_type="application/json", headers=admin)

    low, high = 1, 5000  # the parser's limit: the first depth it calls too deep
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if "nested too deeply" in send(mid).get_data(as_text=True) else (mid + 1, high)
    assert 100 < low < 5000
    for depth in range(max(1, low - 200), low + 3):
        response = send(depth)
        assert_problem(response, (400, 404, 422), what=f"{where} at depth {depth}")
    watch.assert_nothing_written(where)


# -- every documented query parameter, path parameter and header -------------------------------
QUERY_VALUES = [
    "\x00",
    "a\x00b",
    str(2**64),
    "1" + "0" * 400,
    str(-(2**63) - 1),
    "-1",
    "１",
    "²",
    "NaN",
    "1e3",
    "1_000",
    SQL,
    "../../etc/passwd",
    "%2e%2e%2f",
    "a" * 10_000,
    "",
    *BAD_DATES,
    ABSURD_OFFSETS[2],
]
#: already percent-encoded: invalid UTF-8 (an encoded surrogate, stray bytes) and broken escapes
RAW_QUERY_VALUES = ["%ED%A0%80", "%FF%FE", "%", "%zz"]


def documented_gets(client: FlaskClient) -> list[tuple[str, dict[str, Any]]]:
    spec = client.get("/openapi.json").get_json()
    return [(path, item["get"]) for path, item in spec["paths"].items() if "get" in item]


def test_every_query_parameter_refuses_hostile_values(hostile_app: Flask, watch: WriteWatch) -> None:
    """Integers and dates are 422 for every hostile value; free text may match nothing (200) but
    nothing is ever a 5xx, a non-problem error or a stack trace, and nothing is written."""
    client = hostile_app.test_client()
    event_id = client.get("/v1/events?limit=1").get_json()["events"][0]["id"]
    sent = 0
    for template, operation in documented_gets(client):
        path = template.replace("{stream}", "policy-us-h200").replace("{name}", "timeline")
        path = path.replace("{event_id}", event_id)
        for param in (p for p in operation.get("parameters", []) if p["in"] == "query"):
            schema = param.get("schema", {})
            strict = schema.get("type") == "integer" or schema.get("format") in ("date", "date-time")
            for value in [quote(v, safe="") for v in QUERY_VALUES] + RAW_QUERY_VALUES:
                response = client.get(f"{path}?{param['name']}={value}")
                what = f"GET {path}?{param['name']}={value[:40]}"
                sent += 1
                if strict or response.status_code >= 400:
                    assert_problem(response, 422 if strict else (400, 404, 422), what=what)
                else:
                    assert response.status_code == 200, what
                    assert_no_trace(response.get_data(as_text=True), what)
    assert sent > 1500
    watch.assert_nothing_written("query sweep")


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("/v1/events?after=1&after=2", "after"),
        ("/v1/projections/timeline?subject=a&subject=b", "more than once"),
        ("/v1/projections/timeline?no_such_parameter=1", "unknown parameter"),
        ("/v1/audit/verify?position=1", "hash"),
        ("/v1/audit/verify?hash=" + "0" * 64, "position"),
        ("/v1/audit/verify?position=1&hash=", "hash"),
        (f"/v1/audit/verify?position=1&hash={quote(SQL)}", "hash"),
        ("/v1/audit/verify?position=1&hash=" + "A" * 64, "hash"),
        (f"/v1/projections/timeline?min_position={2**53 - 1}", "min_position"),
    ],
)
def test_conflicting_or_incomplete_queries_are_422(url: str, detail: str, hostile_app: Flask) -> None:
    response = hostile_app.test_client().get(url)
    assert_problem(response, 422, detail=detail, what=url)


def test_sql_in_free_text_filters_matches_nothing_and_drops_nothing(hostile_app: Flask, watch: WriteWatch) -> None:
    client = hostile_app.test_client()
    before = client.get("/v1/events").get_json()["events"]
    for url in (
        f"/v1/events?stream_prefix={quote(SQL)}",
        f"/v1/streams?prefix={quote(SQL)}",
        f"/v1/projections/timeline?subject={quote(SQL)}",
        f"/v1/projections/timeline?type={quote(SQL)}",
        f"/v1/projections/policy-status?jurisdiction={quote(SQL)}",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.get_json()
        found = body.get("events", body.get("streams", body.get("result")))
        assert found in ([], {}), (url, found)
    assert client.get("/v1/events").get_json()["events"] == before
    watch.assert_nothing_written()


def test_every_path_parameter_refuses_hostile_segments(
    hostile_app: Flask, admin: dict[str, str], watch: WriteWatch
) -> None:
    client = hostile_app.test_client()
    spec = client.get("/openapi.json").get_json()
    segments = [quote(v, safe="") for v in (SQL, "\x00", "a" * 10_000, "../../etc/passwd", " ", "流", "-x")]
    segments += ["..", ".", "%2e%2e%2f", "..%2f..%2fetc", "%ED%A0%80", "%FF"]
    body = batch(wire_event())
    sent = 0
    for path, item in spec["paths"].items():
        if "{" not in path:
            continue
        for method in ("get", "post"):
            if method not in item:
                continue
            for segment in segments:
                url = path.replace("{stream}", segment).replace("{name}", segment).replace("{event_id}", segment)
                response = client.open(url, method=method.upper(), data=body, content_type="application/json",
                                       headers=admin)  # fmt: skip
                sent += 1
                assert_problem(response, (404, 405, 422), what=f"{method.upper()} {url[:80]}")
    assert sent >= 50
    watch.assert_nothing_written("path sweep")


@pytest.mark.parametrize("value", ["²", "1" * 30, "-1", "1.5", SQL, "\x00", " 1"])
def test_a_hostile_last_event_id_is_422(value: str, hostile_app: Flask) -> None:
    response = hostile_app.test_client().get("/v1/events/live", headers={"Last-Event-ID": value})
    assert_problem(response, 422, detail="Last-Event-ID", what=repr(value))


def test_a_made_up_digest_proves_nothing(hostile_app: Flask) -> None:
    """A well-formed hash that the log never had fails verification, at position 0 too."""
    client = hostile_app.test_client()
    for position in (0, 1, 3):
        report = client.get(f"/v1/audit/verify?position={position}&hash={'a' * 64}").get_json()
        assert (report["ok"], report["problem"]) == (False, "the hash differs from the digest kept earlier"), position
    genesis = client.get(f"/v1/audit/verify?position=0&hash={'0' * 64}").get_json()
    assert genesis["ok"] is True


def test_the_app_still_answers_after_all_this(hostile_app: Flask) -> None:
    """The process survived: the log verifies and holds exactly the seeded events."""
    client = hostile_app.test_client()
    report = client.get("/v1/audit/verify").get_json()
    assert (report["ok"], report["events_checked"]) == (True, 3)


def test_a_fresh_app_refuses_the_same_as_a_used_one(tmp_path: Any) -> None:
    """No case above depended on the state earlier cases left (a spot check on a new database)."""
    app = create_app({"db": str(tmp_path / "fresh.db")}, clock=FixedClock(START))
    try:
        token = app.extensions["policy_timeline"].tokens.create(["admin"], "fresh")
        response = app.test_client().post(
            APPEND, data=with_data('{"summary":"\\ud800"}'), content_type="application/json", headers=bearer(token)
        )
        assert_problem(response, 400, detail="surrogate")
    finally:
        app.extensions["policy_timeline"].close()


@pytest.mark.parametrize(
    ("url", "accept", "status"),
    [
        ("/v1/events", "application/xml", 406),
        ("/v1/events", "text/html", 406),
        ("/v1/events", "application/json;q=0, text/plain", 406),
        ("/docs", "application/json", 406),
        ("/metrics", "application/json", 406),
        ("/v1/events/live", "application/json", 406),
        ("/v1/events", "*/*", 200),
        ("/v1/events", "application/*", 200),
        ("/v1/events", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200),
        ("/metrics", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1", 200),
        ("/docs", "text/html", 200),
    ],
)
def test_an_accept_header_the_route_cannot_serve_is_406(
    url: str, accept: str, status: int, hostile_app: Flask, watch: WriteWatch
) -> None:
    response = hostile_app.test_client().get(url, headers={"Accept": accept})
    if status == 406:
        assert_problem(response, 406, detail="Accept", what=f"{url} {accept}")
    else:
        assert response.status_code == status, (url, accept)
    watch.assert_nothing_written(url)
