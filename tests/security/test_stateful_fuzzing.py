"""Schemathesis in stateful mode over the whole API: sequences of calls that feed each answer
into the next through OpenAPI links, with a fixed seed and a bounded number of steps.

Links come from the document (append → read the stream, read → append with If-Match), from
schemathesis's inference (a listed id → the item), and, for operations no link reaches, from
this test: digest → verify, projections → replay, append → the timeline at the appended
position (read-your-writes), and a plain link from an append to every other operation, so
that every operation runs against a log that grows. Schemathesis cannot invent a batch the
catalogue accepts (an event's fields depend on its type), so every other positive append
carries a valid batch for the generated stream.

After every step: no 5xx; status, content type, headers and body as documented; invalid input
rejected; no stack trace; a created event can be read back; and the database untouched by any
refused POST (SQLite's data_version), the log growing only by acknowledged appends.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from fixtures.api import REJECTED_STATUSES, wire_event
from fixtures.sample_events import TYPES
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)
from security_helpers import WriteWatch, assert_no_trace

SEED = 20260615
SCENARIOS = 220  # per suite
MAX_SUITES = 12
STEPS_PER_SCENARIO = 12
MIN_CALLS = 2_000
APPEND_PATH = "/v1/streams/{stream}/events"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    use_after_free,
    ensure_resource_availability,
]


def config(token: str) -> schemathesis.Config:
    """Rejections as above; the admin token as the document's bearerAuth scheme (so that
    schemathesis knows a request is authenticated, and never counts a header it dropped)."""
    return schemathesis.Config.from_dict(
        {
            "checks": {"negative_data_rejection": {"expected-statuses": REJECTED_STATUSES}},
            "auth": {"openapi": {"bearerAuth": {"bearer": token}}},
        }
    )


def ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def add_links(spec: dict[str, Any]) -> int:
    """Links the document does not declare, so that the state machine reaches every operation."""
    paths = spec["paths"]

    def link(source: tuple[str, str, str], name: str, target: tuple[str, str], **definition: Any) -> None:
        path, method, status = source
        response = paths[path][method]["responses"][status]
        response.setdefault("links", {})[name] = {"operationRef": ref(*target), **definition}

    appended = (APPEND_PATH, "post", "201")
    link(("/v1/audit/digest", "get", "200"), "VerifyUpToDigest", ("/v1/audit/verify", "get"),
         parameters={"query.position": "$response.body#/position", "query.hash": "$response.body#/hash"})  # fmt: skip
    link(("/v1/projections", "get", "200"), "ReplayProjection", ("/v1/audit/replay", "post"),
         requestBody={"projection": "$response.body#/projections/0/name"})  # fmt: skip
    link(appended, "TimelineAfterAppend", ("/v1/projections/timeline", "get"),
         parameters={"query.min_position": "$response.body#/events/0/position"})  # fmt: skip
    link(appended, "EventsOfTheType", ("/v1/events", "get"), parameters={"query.type": "$response.body#/events/0/type"})
    targets = {
        link["operationRef"]
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
        for link in response.get("links", {}).values()
    }
    added = 0
    for path, item in paths.items():
        for method in ("get", "post"):
            if method in item and ref(path, method) not in targets and (path, method) != (APPEND_PATH, "post"):
                added += 1
                link(appended, f"Then{added}", (path, method))
    return added


def valid_batch(body: Any, n: int) -> dict[str, Any]:
    """A batch the catalogue accepts, keeping a generated expected_version when it is usable."""
    events = [wire_event(TYPES[(n + i) % len(TYPES)], f"2026-{1 + (n + i) % 12:02d}-15") for i in range(1 + n % 3)]
    out: dict[str, Any] = {"events": events}
    if isinstance(body, dict) and body.get("expected_version") in ("any", "no_stream", 0, 1, 2):
        out["expected_version"] = body["expected_version"]
    return out


@pytest.mark.slow
def test_stateful_sequences_over_the_whole_api(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    services = app.extensions["policy_timeline"]
    token = services.tokens.create(["admin"], "stateful")
    seeded = services.store.digest().position
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config(token))
    assert add_links(schema.raw_schema) > 10
    watch = WriteWatch(services.config.db)
    calls: Counter[str] = Counter()
    acknowledged = [0]

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            is_append = case.method.upper() == "POST" and case.path == APPEND_PATH
            if is_append and case.meta and case.meta.generation.mode is GenerationMode.POSITIVE:
                calls["positive appends"] += 1
                n = zlib.crc32(repr(case.body).encode())  # from the drawn case: the same draws, the same batch
                if n % 2:
                    case.body = valid_batch(case.body, n // 2)
            watch.mark()

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            calls["calls"] += 1
            calls[f"{case.method.upper()} {case.path} {response.status_code}"] += 1
            what = f"{case.method.upper()} {case.formatted_path} → {response.status_code}"
            assert_no_trace(response.text, what)
            appended = 0
            if case.path == APPEND_PATH and case.method.upper() == "POST" and response.status_code == 201:
                appended = len(json.loads(response.text)["events"])
                acknowledged[0] += appended
            if case.method.upper() == "POST" and response.status_code >= 400:
                watch.assert_nothing_written(what)
            else:
                assert watch.events() == watch.before[1] + appended, what
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder)

    run_settings = settings(
        max_examples=SCENARIOS,
        stateful_step_count=STEPS_PER_SCENARIO,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    suites = 0
    try:
        # As schemathesis's own runner: a suite that the log's state made inconsistent to
        # Hypothesis (the same draws met another answer) ends, and the next suite goes on.
        while calls["calls"] < MIN_CALLS and suites < MAX_SUITES:
            suite = hypothesis.seed(SEED + suites)(type(f"Workflow{suites}", (Workflow,), {}))
            suites += 1
            try:
                suite.run(settings=run_settings)
            except hypothesis.errors.Flaky:
                calls["suites ended as flaky"] += 1
    finally:
        watch.close()
    print(f"{calls['calls']} calls in {suites} suites, {acknowledged[0]} events appended:", dict(sorted(calls.items())))
    assert calls["calls"] >= MIN_CALLS
    assert acknowledged[0] > 50, "appends never succeeded: the sequences did not reach the links after them"
    operations = {key.rsplit(" ", 1)[0] for key in calls if key.startswith(("GET ", "POST "))}
    assert len(operations) >= 25, sorted(operations)
    assert services.store.digest().position == seeded + acknowledged[0]
    report = app.test_client().get("/v1/audit/verify").get_json()
    assert (report["ok"], report["events_checked"]) == (True, seeded + acknowledged[0])
