"""A file the server refuses for its content, in Chromium: the grassroots doctor reaches
the case from the home page, sends a text file named .dcm with a real CT slice; the
refused one is said in the page's language with the server's own words (no address of
the server), leaves the uploader so no retry is offered, and the good one is stored."""

from __future__ import annotations

import pytest
from flask import url_for

from telemed.extensions import db
from telemed.services.cases import dicom
from tests import browsing, dicom_files
from tests.test_cases_browser import sign_in

pytestmark = pytest.mark.browser

WORDS = {
    "zh_Hans": ("不是 DICOM 文件", "已拒收", "已保存"),
    "en": ("not a DICOM file", "refused", "stored"),
}


@pytest.fixture
def browser():
    with browsing.launched() as browser:
        yield browser


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_a_refused_file_is_said_in_words_and_not_offered_again(
    app, world, live_http, browser, tmp_path, locale
):
    from telemed.db import write_intent
    from telemed.domain.case_states import CaseKind
    from telemed.services.accounts.context import actor_of
    from telemed.services.cases import cases

    with write_intent(True):
        doctor = world.user("gp_ts1")
        doctor.locale = locale
        case_id = cases.open_case(
            actor_of(doctor),
            patient_id=world.patients["TS1"][0].id,
            kind=CaseKind.IMAGING_READ,
            question="Nodule on the right lung?",
            target_department_id=world.departments["RAD"].id,
        ).id
        db.session.commit()
    db.session.remove()
    with app.test_request_context():
        cases_address = url_for("cases.index")
    refused = tmp_path / "letter.dcm"
    refused.write_text("Dear colleague, please read the attached images.\n" * 10)
    good = dicom_files.ct_series(tmp_path / "ct", 1)[0]
    reason, refused_word, stored_word = WORDS[locale]

    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    sign_in(page, live_http.url, "gp_ts1")
    page.goto(f"{live_http.url}/")
    page.click(f"nav a[href='{cases_address}']")
    page.click(f"main a[href='/cases/{case_id}']")
    page.wait_for_url(f"**/cases/{case_id}")

    page.wait_for_selector("#uploader .uppy-Dashboard-input", state="attached")
    page.set_input_files("#uploader .uppy-Dashboard-input >> nth=0", [str(refused), str(good)])
    page.click("#uploader .uppy-StatusBar-actionBtn--upload")
    page.wait_for_selector("#upload-results li.refused", timeout=60_000)
    page.wait_for_selector("#upload-results li.stored", timeout=60_000)
    # The refused file leaves the uploader: only the stored one is left, with no retry.
    page.wait_for_function(
        "() => document.querySelectorAll('#uploader .uppy-Dashboard-Item').length === 1",
        timeout=30_000,
    )
    said = page.inner_text("#upload-results li.refused")
    assert said.startswith(refused_word) and "letter.dcm" in said and reason in said, said
    assert "/uploads" not in said and "tus:" not in said and "response" not in said, said
    assert page.locator("#uploader .uppy-Dashboard-Item-progressIcon--retry").count() == 0
    assert page.locator("#uploader .uppy-StatusBar-actionBtn--retry").count() == 0
    assert "letter.dcm" not in page.inner_text("#uploader .uppy-Dashboard-files")
    stored = page.inner_text("#upload-results li.stored")
    assert good.name in stored and stored_word in stored, stored
    db.session.remove()
    assert dicom.count_instances(case_id) == 1


def test_a_file_that_failed_on_the_link_is_still_offered_again(
    app, world, live_http, browser, tmp_path
):
    """Unlike a refusal, a file whose chunks never reached the server keeps its retry."""
    from telemed.db import write_intent
    from telemed.domain.case_states import CaseKind
    from telemed.services.accounts.context import actor_of
    from telemed.services.cases import cases

    with write_intent(True):
        case_id = cases.open_case(
            actor_of(world.user("gp_ts1")),
            patient_id=world.patients["TS1"][0].id,
            kind=CaseKind.IMAGING_READ,
            question="Nodule on the right lung?",
            target_department_id=world.departments["RAD"].id,
        ).id
        db.session.commit()
    db.session.remove()
    good = dicom_files.ct_series(tmp_path / "ct", 1)[0]

    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.clock.install()  # the uploader's waits between retries pass when the test says
    sign_in(page, live_http.url, "gp_ts1")
    page.goto(f"{live_http.url}/cases/{case_id}")
    # The link breaks for every chunk: the PATCHes never arrive.
    cut = lambda route: route.abort() if route.request.method == "PATCH" else route.continue_()  # noqa: E731
    page.route("**/uploads/*", cut)
    page.wait_for_selector("#uploader .uppy-Dashboard-input", state="attached")
    page.set_input_files("#uploader .uppy-Dashboard-input >> nth=0", [str(good)])
    page.click("#uploader .uppy-StatusBar-actionBtn--upload")
    for _ in range(30):  # Uppy's retry delays add up to 88 s
        if page.locator("#upload-results li.refused").count():
            break
        page.clock.fast_forward(5_000)
        page.wait_for_timeout(200)
    page.wait_for_selector("#upload-results li.refused", timeout=10_000)
    said = page.inner_text("#upload-results li.refused")
    assert "connection failed" in said and "/uploads" not in said, said
    page.wait_for_selector("#uploader .uppy-StatusBar-actionBtn--retry")
    assert page.locator("#uploader .uppy-Dashboard-Item").count() == 1
    # The link is back: retrying sends the file.
    page.unroute("**/uploads/*", cut)
    page.click("#uploader .uppy-StatusBar-actionBtn--retry")
    page.wait_for_selector("#upload-results li.stored", timeout=60_000)
    db.session.remove()
    assert dicom.count_instances(case_id) == 1
