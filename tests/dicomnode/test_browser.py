"""The DICOM node in headless Chromium: the admin gives a township its AE title and PACS
(a wrong title is refused on the field), its PACS pushes a study that waits in the inbox
and the doctor attaches it to a case in one click, then finds an earlier study on the PACS
from the case page and pulls it in."""

from __future__ import annotations

import pydicom
import pytest

from telemed.domain.case_states import CaseKind
from telemed.extensions import db
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, dicom
from tests import browsing, dicom_files, factories
from tests.dicomnode.support import Orthanc, listener

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    with browsing.launched() as browser:
        yield browser


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_admin_sets_the_node_then_a_doctor_attaches_and_pulls_studies(
    app, world, live_http, browser, tmp_path
):
    scp = listener(app)
    pacs = Orthanc(
        tmp_path / "orthanc",
        ae_title="TS1_PACS",
        modalities={"telemed": [scp.ae_title, "127.0.0.1", scp.port]},
    )
    try:
        case = cases.open_case(
            actor_of(world.user("gp_ts1")),
            patient_id=world.patients["TS1"][1].id,
            kind=CaseKind.IMAGING_READ,
            question="Old fracture healed?",
            target_department_id=world.departments["RAD"].id,
        )
        db.session.commit()
        case_id = case.id
        pushed = dicom_files.ct_series(tmp_path / "pushed", 2, patient_id="PACS-0001")
        earlier = dicom_files.ct_series(tmp_path / "earlier", 3, patient_id="PACS-0002")
        pushed_ids = [pacs.upload(path) for path in pushed]
        for path in earlier:
            pacs.upload(path)
        db.session.remove()  # hold no transaction while the servers work
        base = live_http.url

        admin = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        sign_in(admin, base, "admin")
        admin.click("nav >> text=DICOM nodes")
        admin.click("text=Edit Township One")
        admin.fill("#ae_title", "TS1\\PACS")
        admin.click("main form button[type=submit]")
        assert "no backslash" in admin.inner_text("#ae_title-error")
        admin.fill("#ae_title", "TS1_PACS")
        admin.fill("#pacs_host", "127.0.0.1")
        admin.fill("#pacs_port", str(pacs.dicom_port))
        admin.fill("#pacs_ae_title", "TS1_PACS")
        admin.click("main form button[type=submit]")
        admin.wait_for_url("**/admin/dicom-nodes")
        assert f"TS1_PACS@127.0.0.1:{pacs.dicom_port}" in admin.inner_text("main")

        answer = pacs.push("telemed", pushed_ids)
        assert answer.get("FailedInstancesCount", 0) == 0, answer

        doctor = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        sign_in(doctor, base, "gp_ts1")
        doctor.click("nav >> text=Imaging inbox")
        study_uid = pydicom.dcmread(pushed[0]).StudyInstanceUID
        row = doctor.locator(f'tr[data-study="{study_uid}"]')
        assert "PACS-0001" in row.inner_text()
        doctor.screenshot(path=str(tmp_path / "inbox.png"))
        row.locator("select").select_option(str(case_id))
        row.locator("button").click()
        doctor.wait_for_url(f"**/cases/{case_id}")
        assert "2 images added" in doctor.inner_text(".flashes")

        doctor.click("text=Pull a study from your PACS")
        doctor.fill("#patient_id", "PACS-0002")
        doctor.click("main form.card button[type=submit]")
        earlier_uid = pydicom.dcmread(earlier[0]).StudyInstanceUID
        found = doctor.locator(f'tr[data-study="{earlier_uid}"]')
        assert "3 images" in found.inner_text()
        doctor.screenshot(path=str(tmp_path / "pacs.png"))
        found.locator("button").click()
        doctor.wait_for_url(f"**/cases/{case_id}")
        assert "The PACS sent 3 images into this case." in doctor.inner_text(".flashes")
        doctor.screenshot(path=str(tmp_path / "case.png"), full_page=True)
        assert dicom.count_instances(case_id) == 5
    finally:
        pacs.stop()
        scp.stop()
