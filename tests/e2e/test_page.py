"""The timeline page at `/` through Flask's test client: the timeline in lanes, the filters in
the URL, hostile event text escaped, the knowledge-time control, the headline and audit
panels, the security headers, and everything present without JavaScript."""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest
from fixtures.api import bearer, wire_event
from flask import Flask
from flask.testing import FlaskClient

from events import FixedClock
from projections.metrics import take_daily_snapshot
from service import usecases
from service.bootstrap import Services

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(2)>'
SOURCE = {"source": {"title": "Notice", "url": "https://example.org/n/1", "publisher": "Gazette"}}


def append(services: Services, stream: str, *events: dict[str, Any]) -> list[Any]:
    recorded, _ = usecases.append_events(services, stream, list(events))
    return recorded


def page(client: FlaskClient, query: str = "") -> str:
    response = client.get("/" + query)
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def marks(html: str) -> list[str]:
    """The titles of the timeline's marks, in page order."""
    return [re.sub(r"<[^>]+>", "", t).strip() for t in re.findall(r'<p class="title">(.*?)</p>', html, re.S)]


def lanes(html: str) -> list[str]:
    return [name for name in re.findall(r'<section class="lane" data-lane="([^"]*)"', html) if name]  # not the template


def overview(html: str) -> str:
    start = html.index('<figure class="overview">')
    return html[start : html.index("</svg>", start)]


def figures(html: str) -> dict[str, str]:
    return dict(re.findall(r'<span class="n" data-figure="([^"]+)">(\d+)</span>', html))


@pytest.fixture
def story(api_services: Services, clock: FixedClock) -> dict[str, Any]:
    """An approval (US), a countermeasure (CN) and a statement, recorded on 2026-01-01."""
    approval = append(api_services, "policy-us-h200", wire_event("PolicyApproved", "2025-12-08", metadata=SOURCE))[0]
    counter = append(
        api_services,
        "policy-cn-h200",
        wire_event("CountermeasureIssued", "2025-12-10", jurisdiction="CN", subject="NVIDIA H200",
                   measure="Buyers must justify purchases", authority="NDRC"),
    )[0]  # fmt: skip
    statement = append(
        api_services,
        "market",
        wire_event("StatementIssued", "2025-12-20", subject="gallium", speaker="A", organisation="B"),
    )[0]
    return {"approval": approval, "counter": counter, "statement": statement}


# -- the timeline --------------------------------------------------------------------------------
def test_the_page_shows_every_event_in_lanes_by_jurisdiction_with_type_title_and_source(
    client: FlaskClient, story: dict[str, Any]
) -> None:
    html = page(client)
    assert lanes(html) == ["CN", "US", "(no jurisdiction)"]
    titles = marks(html)
    assert len(titles) == 3
    assert "PolicyApproved: NVIDIA H200 to CN (White House)" in titles
    assert any(t.startswith("CountermeasureIssued: NVIDIA H200: Buyers must justify") for t in titles)
    assert f'id="ev-{story["approval"].id}"' in html
    assert '<a href="https://example.org/n/1" rel="noopener noreferrer nofollow">Source: Gazette</a>' in html
    # the overview chart is inline SVG with a mark per event, linked to the list
    svg = overview(html)
    assert svg.count('class="dot ') == 3 and f'href="#ev-{story["counter"].id}"' in svg


def test_lanes_by_actor_when_asked(client: FlaskClient, story: dict[str, Any]) -> None:
    html = page(client, "?lanes=actor")
    assert lanes(html) == ["B", "NDRC", "White House"]  # a statement's organisation, not its speaker
    assert 'value="actor" checked' in html


def test_filters_are_in_the_url_and_the_form_keeps_them(client: FlaskClient, story: dict[str, Any]) -> None:
    assert marks(page(client, "?jurisdiction=cn")) == [m for m in marks(page(client)) if "Countermeasure" in m]
    assert lanes(page(client, "?subject=gallium")) == ["(no jurisdiction)"]
    only_approvals = page(client, "?type=PolicyApproved")
    assert len(marks(only_approvals)) == 1 and '<option value="PolicyApproved" selected>' in only_approvals
    dated = page(client, "?from=2025-12-09&to=2025-12-15")
    assert len(marks(dated)) == 1 and 'name="from" type="date" value="2025-12-09"' in dated
    html = page(client, "?subject=NVIDIA+H200&jurisdiction=US")
    assert len(marks(html)) == 1
    assert 'name="subject" value="NVIDIA H200"' in html and 'name="jurisdiction" value="US"' in html
    assert 'form id="view" class="controls" method="get"' in html


def test_values_that_do_not_parse_are_named_on_the_page_not_fatal(client: FlaskClient, story: dict[str, Any]) -> None:
    html = page(client, "?from=yesterday&to=2025-13-40&at=minus&lanes=x&type=NoSuchType&as_of=soon")
    assert len(marks(html)) == 3
    errors = html[html.index('<div class="errors" role="alert">') :]
    for name in ("from", "to", "at", "lanes", "type", "as_of"):
        assert f"<strong>{name}</strong>" in errors
    assert 'aria-invalid="true"' in html
    assert "<strong>to</strong>" in page(client, "?from=2026-01-02&to=2026-01-01")


def test_retracted_events_are_struck_through_and_disputed_claims_marked(
    api_services: Services, client: FlaskClient, story: dict[str, Any]
) -> None:
    approval, counter = story["approval"], story["counter"]
    append(
        api_services,
        "corrections",
        wire_event("EventRetracted", "2025-12-21", event_id=counter.id, reason="Misreported"),
        wire_event("ReportDisputed", "2025-12-22", event_id=approval.id, by="Ministry", summary="Never approved"),
    )
    html = page(client)
    item = html[html.index(f'id="ev-{counter.id}"') :]
    item = item[: item.index("</li>")]
    assert "<del>CountermeasureIssued" in item and "Retracted: Misreported" in item
    disputed = html[html.index(f'id="ev-{approval.id}"') :]
    disputed = disputed[: disputed.index("</li>")]
    assert 'badge-disputed">Disputed</span>' in disputed
    assert "Disputed by Ministry (2025-12-22): Never approved" in disputed
    assert re.search(r'<li class="mark kind-restriction retracted"', html)


# -- escaping -------------------------------------------------------------------------------------
def test_hostile_event_text_is_escaped_everywhere(api_services: Services, client: FlaskClient) -> None:
    source = {"source": {"title": HOSTILE, "url": "https://example.org/x", "publisher": HOSTILE}}
    approved = wire_event(
        "PolicyApproved", "2025-12-08", subject=HOSTILE, jurisdiction=HOSTILE_ATTR, authority=HOSTILE, metadata=source
    )
    event = append(api_services, "hostile", approved)[0]
    dispute = wire_event("ReportDisputed", "2025-12-09", event_id=event.id, by=HOSTILE, summary=HOSTILE)
    append(api_services, "hostile", dispute)
    bodies = [
        page(client),
        page(client, "?lanes=actor"),
        page(client, "?subject=" + HOSTILE),
        client.get(f"/timeline/mark?position={event.position}").get_data(as_text=True),
        client.get("/timeline/panels").get_data(as_text=True),
    ]
    for body in bodies:
        assert (
            HOSTILE not in body
            and "<img" not in body
            and "onerror=alert" not in body.replace("onerror=alert(2)&gt;", "")
        )
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    # in attributes too (the lane's data-lane, the form's value), and in the SVG's text
    assert 'data-lane="&#34;&gt;&lt;img src=x onerror=alert(2)&gt;"' in bodies[0]
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in bodies[2]
    svg = overview(bodies[0])
    assert "&lt;script&gt;" in svg and "<script" not in svg


# -- knowledge time -------------------------------------------------------------------------------------
def test_as_of_shows_what_the_log_knew_then(api_services: Services, client: FlaskClient, clock: FixedClock) -> None:
    approval = append(api_services, "policy-us-h200", wire_event("PolicyApproved", "2025-12-08"))[0]
    clock.advance(days=30)
    purchase = append(
        api_services,
        "market",
        wire_event("PurchaseOrdered", "2026-01-20", subject="NVIDIA H200", buyer_jurisdiction="CN", buyer="Acme",
                   quantity=5, policy_id="us-h200-china"),
    )[0]  # fmt: skip
    now = page(client)
    assert len(marks(now)) == 2
    assert "days from approval to the first purchase (2026-01-20)" in now
    assert figures(now) == {approval.id: "43"}

    then = page(client, f"?at={approval.position}")
    assert len(marks(then)) == 1 and f'id="ev-{purchase.id}"' not in then
    # counted on the day that position was recorded (2026-01-01): 24 days, still waiting
    assert figures(then) == {approval.id: "24"}
    assert "days since approval with no purchase" in then
    assert "1 event(s) recorded later are hidden" in then
    assert f'type="range" min="0" max="{purchase.position}" step="1" value="{approval.position}"' in then
    # the same view by instant, and the empty log before the first event
    assert figures(page(client, "?as_of=2026-01-15T00:00:00Z")) == {approval.id: "24"}
    assert marks(page(client, "?at=0")) == [] and "No approval was recorded then" in page(client, "?at=0")
    # at the head (or past it) the view is live again
    assert "recorded later are hidden" not in page(client, f"?at={purchase.position + 5}")


def test_links_keep_the_filters_and_the_knowledge_control_links_positions(
    client: FlaskClient, story: dict[str, Any]
) -> None:
    html = page(client, "?jurisdiction=CN&lanes=actor&at=2")
    assert 'href="/?jurisdiction=CN&amp;lanes=actor"' in html  # back to now, filters kept
    assert 'href="/?jurisdiction=CN&amp;lanes=actor&amp;at=0"' in html  # a tick of the control


# -- headline and audit ---------------------------------------------------------------------------------
def test_the_headline_counts_days_and_charts_the_recorded_history(
    api_services: Services, client: FlaskClient, story: dict[str, Any]
) -> None:
    approval = story["approval"]
    html = page(client)
    assert figures(html) == {approval.id: str((date(2026, 1, 1) - date(2025, 12, 8)).days)}
    assert "days since approval with no purchase" in html
    assert '<polyline class="computed"' in html and "snapshot" not in html.split('<polyline class="computed"')[1][:80]
    for day in (date(2025, 12, 20), date(2025, 12, 27), date(2026, 1, 1)):
        take_daily_snapshot(api_services.engine, day)
    html = page(client)
    chart = html[html.index('<svg class="chart"') :]
    chart = chart[: chart.index("</svg>")]
    assert chart.count('<circle class="snapshot"') == 3 and '<polyline class="recorded"' in chart
    assert "<title>2025-12-27: 19 days</title>" in chart
    assert "snapshots known at this position (3)" in html


def test_the_audit_panel_shows_the_chain_head_and_who_verified_it(
    api_services: Services, client: FlaskClient, story: dict[str, Any]
) -> None:
    head = api_services.store.digest()
    html = page(client)
    audit = html[html.index('<section id="audit"') :]
    assert '<span class="status-ok">intact</span> (3 events checked)' in audit
    assert f'position <span id="head-position">{head.position}</span>' in audit and head.hash in audit
    assert "verified now by this server at 2026-01-01T09:00:00" in audit and "reused" not in audit
    append(api_services, "later", wire_event("StatementIssued", "2025-12-30", speaker="C", organisation="D"))
    reused = page(client).split('<section id="audit"')[1]
    assert "2026-01-01T09:00:00.000000Z by this server (its result is reused for 5 minutes)" in reused
    assert "1 event(s) recorded since" in reused
    from service.scheduler import run_once

    assert run_once(api_services)["ran"] is True
    audit = page(client).split('<section id="audit"')[1]
    assert "by the scheduler (daily at 02:00 UTC)" in audit and "intact" in audit


def test_the_page_says_when_it_does_not_verify_a_large_log(make_api: Any, story: dict[str, Any]) -> None:
    html = make_api(page_verify_max_events=2).test_client().get("/").get_data(as_text=True)
    assert "not verified by this page" in html and "more than 2 events" in html


# -- headers, assets, no JavaScript needed ---------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/?at=1", "/timeline/panels", "/timeline/mark?position=1"])
def test_html_responses_carry_the_security_headers(client: FlaskClient, story: dict[str, Any], path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    csp = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["default-src"] == "'none'" and "unsafe" not in str(csp)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_no_inline_script_and_every_asset_comes_from_the_package(client: FlaskClient, story: dict[str, Any]) -> None:
    parser = Tags()
    parser.feed(page(client))
    scripts = [a for t, a in parser.tags if t == "script"]
    assert scripts == [{"src": "/static/web/timeline.js", "defer": None}]
    assert all(not name.startswith("on") for _, attrs in parser.tags for name in attrs)
    assets = [a.get("href") for t, a in parser.tags if t == "link"] + [a["src"] for a in scripts]
    assert all(a == "data:," or a.startswith("/static/web/") for a in assets)
    for path, mimetype in (("/static/web/timeline.css", "text/css"), ("/static/web/timeline.js", "text/javascript")):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == mimetype and len(response.data) > 1000
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert b"http://" not in response.data and b"https://" not in response.data


def test_without_javascript_the_html_holds_the_content_and_a_working_form(
    client: FlaskClient, story: dict[str, Any]
) -> None:
    html = page(client)
    parser = Tags()
    parser.feed(html)
    labelled = {a.get("for") for t, a in parser.tags if t == "label"}
    fields = [a for t, a in parser.tags if t in ("input", "select") and a.get("type") not in ("radio",)]
    assert all(f.get("id") in labelled for f in fields), "every control has a label"
    assert ("button", {"type": "submit"}) in parser.tags
    assert {"id": "at", "name": "at", "type": "range"}.items() <= next(
        a for t, a in parser.tags if a.get("id") == "at"
    ).items()
    assert len(marks(html)) == 3 and '<section id="headline"' in html and '<section id="audit"' in html
    assert 'lang="en"' in html and 'name="viewport"' in html


# -- the fragments the script fetches -------------------------------------------------------------------
def test_the_mark_fragment_applies_the_page_filters(client: FlaskClient, story: dict[str, Any]) -> None:
    counter = story["counter"]
    response = client.get(f"/timeline/mark?position={counter.position}")
    assert response.status_code == 200 and response.get_data(as_text=True).strip().startswith('<li class="mark')
    assert 'data-lane="CN"' in response.get_data(as_text=True)
    assert 'data-lane="NDRC"' in client.get(f"/timeline/mark?position={counter.position}&lanes=actor").get_data(True)
    for query in ("&jurisdiction=US", "&type=PolicyApproved", "&from=2026-01-01", "&subject=gallium"):
        assert client.get(f"/timeline/mark?position={counter.position}{query}").status_code == 204, query
    assert client.get("/timeline/mark?position=99").status_code == 204
    for bad in ("", "?position=x", "?position=0", "?position=9007199254740992", "?position=1&position=2"):
        response = client.get("/timeline/mark" + bad)
        assert response.status_code == 422 and response.mimetype == "application/problem+json", bad


def test_the_page_needs_a_read_token_when_reads_do(make_api: Any, story: dict[str, Any]) -> None:
    app: Flask = make_api(require_read_token=True)
    client = app.test_client()
    token = app.extensions["policy_timeline"].tokens.create(["read"], "reader")
    for path in ("/", "/timeline/panels", "/static/web/timeline.js"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=bearer(token)).status_code == 200
