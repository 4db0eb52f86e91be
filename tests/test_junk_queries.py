"""Every GET route of the app, pages and APIs alike, in every role, with a query string
of junk (huge, negative, malformed, out-of-calendar values under the names the routes
read): each answers without a server error."""

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


def get_routes(app) -> list[tuple[str, str]]:
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint == "static":
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
