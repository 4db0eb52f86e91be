"""In headless Chromium: a grassroots doctor sends a PTB-style record (three files at
once through the ECG uploader) and a GE MUSE export; the ECG reader sees the service's
values beside the cart's, changes one, strikes one and signs; the report says whose
each value was."""

from __future__ import annotations

import pytest

from telemed.extensions import db
from tests import browsing
from tests.ecg.samples import SYNTHETIC
from tests.test_cases_browser import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    with browsing.launched() as browser:
        yield browser


def test_cart_files_read_and_their_values_confirmed_changed_struck(app, world, live_http, browser):
    base = live_http.url
    patient_name = world.patients["TS1"][0].name
    ecg_centre = str(world.departments["ECG"].id)
    db.session.remove()

    doctor = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    sign_in(doctor, base, "gp_ts1")
    doctor.goto(f"{base}/cases/new")
    doctor.select_option("#patient_id", label=patient_name)
    doctor.select_option("#kind", "ecg_read")
    doctor.fill("textarea[name=question]", "Palpitations; cart exports attached.")
    doctor.select_option("#target_department_id", ecg_centre)
    doctor.click("form.case-form button[type=submit]")
    doctor.wait_for_url("**/cases/*")
    case_url = doctor.url

    files = [SYNTHETIC / name for name in ("ptb01.hea", "ptb01.dat", "ptb01.xyz", "muse.xml")]
    doctor.wait_for_selector("#ecg-uploader .uppy-Dashboard-input", state="attached")
    doctor.set_input_files("#ecg-uploader .uppy-Dashboard-input >> nth=0", [str(f) for f in files])
    doctor.click("#ecg-uploader .uppy-StatusBar-actionBtn--upload")
    doctor.wait_for_selector("#ecg-uploader .uppy-StatusBar.is-complete", timeout=60_000)
    doctor.wait_for_function(
        "() => document.querySelectorAll('#ecg-upload-results li').length === 4", timeout=30_000
    )
    results = doctor.inner_text("#ecg-upload-results")
    assert results.count(": read") == 2 and "refused" not in results, results
    doctor.goto(case_url)
    recordings = doctor.locator(".ecg-recording[data-status='read']")
    assert recordings.count() == 2  # the three PTB files paired into one recording
    assert "15 " in recordings.nth(0).inner_text()  # leads
    doctor.click("form.transition button[data-to='submitted']")
    doctor.wait_for_load_state("networkidle")

    reader = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    sign_in(reader, base, "ecg1")
    case_id = case_url.rstrip("/").split("/")[-1]
    reader.goto(f"{base}/cases/worklist")
    reader.locator(f"tr[data-case='{case_id}']").locator("button", has_text="Claim").click()
    reader.wait_for_url(f"**/cases/{case_id}")

    muse = reader.locator(".ecg-recording").nth(1)
    assert "GE MUSE (12SL)" in muse.locator(".ecg-measurements thead").inner_text()
    assert muse.locator("tr[data-key='pr_ms'] td.device").inner_text() == "160 ms"
    assert "Normal sinus rhythm" in muse.inner_text()
    # the report's values are the first recording's (the PTB record): change QT, strike QRS
    first = reader.locator(".ecg-recording").nth(0)
    qt_machine = first.locator("tr[data-key='qt_ms'] td.machine").inner_text().split()[0]
    reader.select_option("select[name=ecg_qt_ms_action]", "changed")
    reader.fill("input[name=ecg_qt_ms_value]", str(int(qt_machine) + 20))
    reader.select_option("select[name=ecg_qrs_ms_action]", "struck")
    reader.fill("textarea[name=impression]", "Sinus rhythm.")
    reader.click("#sign-report")
    reader.wait_for_load_state("networkidle")

    doctor.goto(case_url)
    reported = doctor.locator("#report .ecg-reported")
    assert reported.locator("tr[data-key='qt_ms']").get_attribute("data-action") == "changed"
    assert f"{int(qt_machine) + 20} ms" in reported.locator("tr[data-key='qt_ms']").inner_text()
    assert reported.locator("tr[data-key='qrs_ms']").get_attribute("data-action") == "struck"
    assert reported.locator("tr[data-key='heart_rate_bpm']").get_attribute("data-action") == (
        "confirmed"
    )
