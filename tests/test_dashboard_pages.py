"""The dashboard over HTTP: the page, every table's CSV export against the figures, and
each drill-down listing exactly the rows its figure counts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from flask_babel import force_locale

from telemed import clock
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from telemed.services.consortium import dashboard, dashboard_tables
from tests import activity, factories


@pytest.fixture
def month(world):
    previous = dict(cases.FILE_COUNTERS)
    cases.register_file_counter("ecg", lambda case_id: 1)
    cases.register_file_counter("dicom", lambda case_id: 1)
    frozen = clock.FrozenClock(datetime(2026, 11, 20, tzinfo=UTC))
    clock.use(frozen)
    try:
        built = activity.build_month(world, frozen)
        frozen.set(datetime(2027, 1, 5, tzinfo=UTC))
        yield built
    finally:
        clock.use(None)
        cases.FILE_COUNTERS.clear()
        cases.FILE_COUNTERS.update(previous)


MONTH_ARGS = {"period": "month", "anchor": "2026-12-15"}


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_page_and_csv_exports_carry_the_figures(world, month, client):
    headers = factories.bearer(factories.token_for(world.user("admin")))
    page = client.get("/admin/dashboard", query_string=MONTH_ARGS, headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="target-CARD"' in html and "below-target" in html
    board = dashboard.dashboard(actor_of(world.user("admin")), activity.MONTH)
    with force_locale("en"):  # the admin reads English
        tables = dashboard_tables.all_tables(board)
    for name, table in tables.items():
        rows = read_csv(
            client.get(f"/admin/dashboard/{name}.csv", query_string=MONTH_ARGS, headers=headers)
        )
        assert rows == dashboard_tables.as_csv_rows(table), name
    departments = read_csv(
        client.get("/admin/dashboard/departments.csv", query_string=MONTH_ARGS, headers=headers)
    )
    header, body = departments[0], departments[1:]
    by_name = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    card = by_name["Cardiology"]
    assert card["meets_target"] == "no" and by_name["Internal Medicine"]["meets_target"] == "yes"
    assert int(card["down_shared_seats"]) + int(card["shortfall_seats"]) == int(
        card["required_seats"]
    )


def test_json_api_returns_the_same_tables(world, month, client):
    headers = factories.bearer(factories.token_for(world.user("admin")))
    response = client.get("/api/dashboard", query_string=MONTH_ARGS, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["period"] == {"first": "2026-12-01", "last": "2026-12-31"}
    board = dashboard.dashboard(actor_of(world.user("admin")), activity.MONTH)
    with force_locale("en"):  # the admin reads English
        tables = dashboard_tables.all_tables(board)
    for name, table in tables.items():
        rows = dashboard_tables.as_csv_rows(table)
        got = body["tables"][name]
        assert [c["key"] for c in got["columns"]] == rows[0]
        assert [[r["values"][k] for k in rows[0]] for r in got["rows"]] == rows[1:], name
    spec = client.get("/api/openapi.json").get_json()
    assert "/api/dashboard" in spec["paths"] and "/api/referrals/up" in spec["paths"]


def test_drill_downs_list_the_rows_behind_each_figure(world, month, client):
    headers = factories.bearer(factories.token_for(world.user("admin")))
    board = dashboard.dashboard(actor_of(world.user("admin")), activity.MONTH)
    tables = dashboard_tables.all_tables(board)
    checked = 0
    for table in tables.values():
        for row in table.rows:
            for column in table.columns:
                if column.drill is None:
                    continue
                what, extra = column.drill
                params = {**MONTH_ARGS, **row.filters, **extra, "what": what}
                if "first" in row.filters:
                    params["period"] = "custom"
                rows = read_csv(
                    client.get("/admin/dashboard/drill.csv", query_string=params, headers=headers)
                )
                assert len(rows) - 1 == row.values[column.key], (table.name, column.key, row)
                checked += 1
    assert checked > 150
    page = client.get(
        "/admin/dashboard/drill",
        query_string={**MONTH_ARGS, "what": "bookings", "status": "no_show"},
        headers=headers,
    )
    assert page.status_code == 200 and "no_show" in page.get_data(as_text=True)


def test_bad_dashboard_input_names_the_field(world, client):
    headers = factories.bearer(factories.token_for(world.user("admin")))
    for args, field in (
        ({"period": "year"}, "period"),
        ({"period": "custom", "first": "2026-12-01"}, "last"),
        ({"period": "custom", "first": "2026-12-31", "last": "2026-12-01"}, "last"),
        ({"anchor": "tomorrow"}, "anchor"),
        ({"anchor": "9999-12-31"}, "anchor"),  # a week around it would leave the calendar
        ({"period": "week", "anchor": "0001-01-01"}, "anchor"),
        ({"period": "custom", "first": "1999-12-31", "last": "2000-01-06"}, "first"),
        ({"department_id": "x"}, "department_id"),
        ({"department_id": "999"}, "department_id"),
        ({"what": "slots"}, "what"),
    ):
        url = "/admin/dashboard/drill.csv" if "what" in args else "/admin/dashboard/trend.csv"
        response = client.get(
            url, query_string=args, headers={**headers, "Accept": "application/json"}
        )
        assert response.status_code in (404, 422), (args, response.status_code)
        assert response.get_json()["error"]["field"] == field, args
    assert client.get("/admin/dashboard/nothing.csv", headers=headers).status_code == 404
    for args, field in (({"anchor": "9999-12-31"}, "anchor"), ({"period": "month"}, None)):
        response = client.get("/api/dashboard", query_string=args, headers=headers)
        if field is None:
            assert response.status_code == 200
        else:
            assert response.status_code == 422 and response.get_json()["error"]["field"] == field


def test_a_single_day_for_one_department_is_counted(world, month, client):
    """One day holds one policy cut and one trend bucket: their index is a constant, which
    must not be grouped by as a column position."""
    headers = factories.bearer(factories.token_for(world.user("admin")))
    department = world.departments["CARD"].id
    for args in (
        {"period": "custom", "first": "2026-12-07", "last": "2026-12-07"},
        {
            "period": "custom",
            "first": "2026-12-07",
            "last": "2026-12-07",
            "department_id": department,
        },
        {"period": "week", "anchor": "2026-12-07", "department_id": department},
    ):
        response = client.get("/api/dashboard", query_string=args, headers=headers)
        assert response.status_code == 200, (args, response.get_data(as_text=True)[:300])
        assert response.get_json()["tables"]["departments"]["rows"], args


def test_only_admins_see_the_dashboard(world, client):
    # Its own test: the app fixture's app context (and so flask.g) outlives a request in
    # the test client, so one test speaks as one user.
    gp = factories.bearer(factories.token_for(world.user("gp_ts1")))
    assert client.get("/admin/dashboard", headers=gp).status_code == 403
    assert client.get("/admin/dashboard/departments.csv", headers=gp).status_code == 403
