"""Every route of the app, pages and APIs alike, in every role, given junk (huge, negative,
malformed, out-of-calendar values under the names the routes read): GET routes as a query
string, POST routes as a form and as JSON. Each answers without a server error."""

from __future__ import annotations

import pytest
from flask import url_for

from tests import factories

ROLES = ("gp_ts1", "card1", "registrar", "admin")
JUNK = {
    "page": "99999999999999999999999",
    "anchor": "9999-12-31",
    "first": "0001-01-01",
    "last": "9999-12-31",
    "department_id": "99999999999999999999",
    "institution_id": "-1",
    "period": "custom",
    "when": "past",
    "limit": "-5",
    "offset": "99999999999999999999",
    "q": "\x00%",
    "date": "2026-13-45",
    "start": "x",
    "status": "nonsense",
    "_count": "999999999999",
    "patient": "Patient/99999999999999999999",
    "frame": "-1",
    "window": "1e999,nan",
    "quality": "0",
    "viewport": "-1,-1",
    "speed": "0",
    "gain": "nan",
    "part": "-1",
    "what": "x",
    "format": "x",
}


FORM_JUNK = {
    **JUNK,
    "reason": "x" * 100_000,
    "name": "Wang\x00Wu",
    "patient_id": "99999999999999999999",
    "slot_id": "-1",
    "seats": "1e9",
    "starts": "2026-99-99",
    "end": "-1",
    "weekdays": "9",
    "valid_from": "9999-12-31",
    "valid_until": "0001-01-01",
    "cut_off_hours": "-99999999999",
    "window_days": "99999999999999999999",
    "department_id": "abc",
    "kind": "\u202e",
    "nights": "0",
    "total_beds": "999999999999",
    "birth_date": "2999-01-01",
    "national_id": "X" * 40,
    "follow_up_on": "1900-01-01",
}


def get_routes(app, method: str = "GET") -> list[tuple[str, str]]:
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if method not in rule.methods or rule.endpoint == "static":
                continue
            # Path ids and UIDs that exist in no case: the route still parses its query.
            values = {
                name: 1 if name.endswith(("_id", "id")) else "1.2.3" for name in rule.arguments
            }
            routes.append((rule.endpoint, url_for(rule.endpoint, **values)))
    return routes


@pytest.mark.parametrize(
    "query",
    [{}, JUNK, {**JUNK, "period": "week"}, {**JUNK, "period": "month", "anchor": "0001-01-01"}],
    ids=["plain", "junk", "junk-week", "junk-month"],
)
def test_no_get_route_fails_on_any_query(app, world, query):
    routes = get_routes(app)
    assert len(routes) > 80
    failures = []
    for username in ROLES:
        headers = factories.bearer(factories.token_for(world.user(username)))
        for endpoint, url in routes:
            response = app.test_client().get(url, query_string=query, headers=headers)
            if response.status_code >= 500:
                failures.append(f"{username} {url} ({endpoint}): {response.status_code}")
            response.close()
    assert not failures, "\n".join(failures)


def test_no_post_route_fails_on_junk_forms_or_json(app, world):
    routes = get_routes(app, "POST")
    assert len(routes) > 50
    failures = []
    for username in ROLES:
        headers = factories.bearer(factories.token_for(world.user(username)))
        for endpoint, url in routes:
            for body in ({"data": {}}, {"data": FORM_JUNK}, {"json": FORM_JUNK}):
                response = app.test_client().post(url, headers=headers, **body)
                if response.status_code >= 500:
                    failures.append(f"{username} {url} ({endpoint}) {list(body)}: 500")
                response.close()
    assert not failures, "\n".join(failures)
