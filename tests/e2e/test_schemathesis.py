"""Schemathesis against /openapi.json, through the WSGI app, with a fixed seed and bounds.

Two runs over every documented operation:
- fuzzing: generated requests, valid ones then invalid ones (counted: ≥ 500 overall);
- coverage: schemathesis's boundary values, missing and extra inputs, and methods the
  document does not list for a path (which must be a 405 with the right `Allow`).

No response may be a 5xx; every one must match the document (status, content type, headers,
body schema); invalid input must be rejected; an operation that declares a token must refuse
a request without one. Not checked: that every schema-valid request is accepted — some are
refused for reasons a schema cannot say (an unknown event type, a position beyond the log's
head, `hash` without `position`), each with a documented 422.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fixtures.api import REJECTED_STATUSES, bearer, wire_event
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from service import usecases
from service.app import create_app

SEED = 20260101
SHARDS = 2
#: fuzzing examples per operation and mode; operations with few inputs exhaust theirs sooner.
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 25}
MIN_CASES_PER_SHARD = 250  # ≥ 500 overall
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
COVERAGE_CHECKS = [*CHECKS, unsupported_method, allow_header_conformance, missing_required_header]
SETTINGS: dict[str, Any] = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTED_STATUSES}}}
)


def seed_log(app: Flask) -> str:
    """A few events (so projections answer with data); returns an admin token."""
    services = app.extensions["policy_timeline"]
    usecases.append_events(
        services,
        "policy-us-h200",
        [
            wire_event("PolicyApproved", "2025-12-08"),
            wire_event("StatementIssued", "2026-01-02"),
            wire_event("PurchaseOrdered", "2026-03-01", subject="NVIDIA H200", buyer_jurisdiction="CN"),
        ],
    )
    token: str = services.tokens.create(["admin"], "schemathesis")
    return token


# -- fuzzing, counted ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_generated_requests_get_documented_answers(shard: int, make_api: Any) -> None:
    app = make_api()
    token = seed_log(app)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=CONFIG)
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.label)
    counts: dict[str, int] = {}
    for operation in operations[shard::SHARDS]:
        for mode, examples in EXAMPLES.items():
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue
            counts[f"{operation.label} {mode.value}"] = _fuzz(operation, mode, examples, token)
    total = sum(counts.values())
    print(f"shard {shard}: {total} cases over {len(counts)} operation/mode pairs")
    assert total >= MIN_CASES_PER_SHARD, counts


def _has_inputs(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


def _fuzz(operation: Any, mode: GenerationMode, examples: int, token: str) -> int:
    calls = 0

    @hypothesis.seed(SEED)
    @settings(max_examples=examples, phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink], **SETTINGS)
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        case.call_and_validate(headers=bearer(token), checks=CHECKS)

    run()
    return calls


# -- coverage: one test per operation ----------------------------------------------------------
def _coverage_app() -> tuple[Flask, str]:
    """The app the coverage run talks to. Schemathesis reads the document when this module
    is imported, so the app is made then, in a temporary directory removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="policy-timeline-schemathesis-"))
    app = create_app({"db": str(folder / "log.db")})
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    atexit.register(app.extensions["policy_timeline"].close)
    return app, seed_log(app)


COVERAGE_APP, COVERAGE_TOKEN = _coverage_app()
schema = schemathesis.openapi.from_wsgi("/openapi.json", COVERAGE_APP, config=CONFIG)


@pytest.mark.slow
@schema.parametrize()
@hypothesis.seed(SEED)
@settings(phases=[hypothesis.Phase.explicit], **SETTINGS)
def test_boundary_cases_and_undocumented_methods(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=bearer(COVERAGE_TOKEN), checks=COVERAGE_CHECKS)
