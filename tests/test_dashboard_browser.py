"""The dashboard in headless Chromium: an admin signs in, changes the period and the
department, sees the below-target department flagged, drills down to the bookings
behind a figure, and exports a CSV that opens with the numbers the page shows."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from telemed import clock
from telemed.extensions import db
from telemed.services.cases import cases
from tests import activity, factories
from tests.browsing import launched

pytestmark = pytest.mark.browser


@pytest.fixture
def month(world):
    previous = dict(cases.FILE_COUNTERS)
    cases.register_file_counter("ecg", lambda case_id: 1)
    cases.register_file_counter("dicom", lambda case_id: 1)
    frozen = clock.FrozenClock(datetime(2026, 11, 20, tzinfo=UTC))
    clock.use(frozen)
    try:
        built = activity.build_month(world, frozen)
        frozen.set(datetime(2027, 1, 5, 2, tzinfo=UTC))
        ids = {code: dept.id for code, dept in world.departments.items()}
        db.session.commit()
        yield built, ids
    finally:
        clock.use(None)
        cases.FILE_COUNTERS.clear()
        cases.FILE_COUNTERS.update(previous)


def cell(page, table: str, row_text: str, column: str):
    row = page.locator(f'[data-testid="table-{table}"] tbody tr', has_text=row_text).first
    return row.locator(f'td[data-col="{column}"]')


def test_admin_reads_filters_drills_and_exports(month, live_http, tmp_path):
    _built, ids = month
    with launched() as browser:
        page = browser.new_page(accept_downloads=True, locale="en-US")
        page.goto(f"{live_http.url}/login")
        page.fill("#username", "admin")
        page.fill("#password", factories.PASSWORD)
        page.click("button.primary")
        page.goto(f"{live_http.url}/admin/dashboard")
        expect(page.get_by_test_id("period-shown")).to_contain_text("2027-01-01")

        # December 2026, the whole consortium.
        page.select_option('[data-testid="period"]', "month")
        page.fill('[data-testid="anchor"]', "2026-12-15")
        page.click('[data-testid="apply"]')
        expect(page.get_by_test_id("period-shown")).to_contain_text("2026-12-01 – 2026-12-31")
        page.wait_for_function("() => document.documentElement.dataset.chartsReady === 'true'")
        assert page.locator("#chart-share").bounding_box()["height"] > 50
        cardiology = page.get_by_test_id("target-CARD")
        expect(cardiology).to_have_class("target below-target")
        expect(cardiology.get_by_test_id("flag-seats")).to_contain_text("below target")
        expect(page.get_by_test_id("target-IM").get_by_test_id("flag-seats")).to_have_count(0)
        expect(cell(page, "departments", "Cardiology", "meets_target")).to_have_text("no")
        no_shows = int(cell(page, "departments", "Cardiology", "no_shows").inner_text())
        published = cell(page, "departments", "Cardiology", "published_seats").inner_text()
        assert no_shows > 0

        # One department: only its rows remain, and internal medicine meets its target.
        page.select_option('[data-testid="department"]', str(ids["IM"]))
        page.click('[data-testid="apply"]')
        rows = page.locator('[data-testid="table-departments"] tbody tr')
        expect(rows).to_have_count(2)  # internal medicine and the total
        expect(cell(page, "departments", "Internal Medicine", "meets_target")).to_have_text("yes")
        page.select_option('[data-testid="department"]', "")
        page.click('[data-testid="apply"]')

        # Drill down: the no-shows behind cardiology's figure.
        cell(page, "departments", "Cardiology", "no_shows").locator("a").click()
        expect(page.get_by_test_id("drill-total")).to_contain_text(f"{no_shows} rows")
        expect(page.locator('[data-testid="drill-table"] tbody tr')).to_have_count(no_shows)
        # The status as a word, not its code.
        expect(page.locator('[data-testid="drill-table"] tbody')).to_contain_text("no-show")
        page.go_back()

        # Export the departments table; the file holds what the page shows.
        with page.expect_download() as download_info:
            page.get_by_test_id("csv-departments").click()
        path = tmp_path / "departments.csv"
        download_info.value.save_as(path)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
        card = next(row for row in rows if row["department"] == "Cardiology")
        assert card["no_shows"] == str(no_shows)
        assert card["published_seats"] == published
        assert card["meets_target"] == "no"
        for column in ("down_shared_seats", "booked_by_grassroots", "released", "cancelled"):
            assert card[column] == cell(page, "departments", "Cardiology", column).inner_text()

        # A week: the trend goes by day.
        page.select_option('[data-testid="period"]', "week")
        page.fill('[data-testid="anchor"]', "2026-12-16")
        page.click('[data-testid="apply"]')
        expect(page.locator('[data-testid="table-trend"] tbody tr')).to_have_count(7)
