"""The issue's scenario in headless Chromium: a grassroots doctor opens a case, uploads a
CT series and an ECG through the upload widgets (with their progress bars), submits; a
radiologist claims it from the worklist and views the series in the case page's viewer
and the ECG on paper with its machine measurements."""

from __future__ import annotations

import os

import pytest

from telemed.extensions import db
from tests import browsing, dicom_files, factories
from tests.ecg import samples as ecg_samples

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


def test_doctor_uploads_a_ct_series_and_the_radiologist_views_it(
    app, world, live_http, browser, tmp_path
):
    slices = dicom_files.ct_series(tmp_path / "series", 12)
    base = live_http.url
    patient_name = world.patients["TS1"][0].name
    radiology = str(world.departments["RAD"].id)
    db.session.remove()  # hold no transaction (on SQLite: no lock) while the server works

    doctor = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    sign_in(doctor, base, "gp_ts1")
    doctor.goto(f"{base}/cases/new")
    doctor.select_option("#patient_id", label=patient_name)
    doctor.select_option("#kind", "imaging_read")
    doctor.fill("textarea[name=question]", "Mass in the right lung? Please read the CT.")
    doctor.fill("textarea[name=clinical_summary]", "Cough for three months, 40 pack-years.")
    doctor.select_option("select[name=priority]", "urgent")
    doctor.select_option("#target_department_id", radiology)
    doctor.click("form.case-form button[type=submit]")
    doctor.wait_for_url("**/cases/*")
    case_url = doctor.url

    # Upload through Uppy's dashboard with the tus plugin; the progress bar shows.
    doctor.wait_for_selector("#uploader .uppy-Dashboard-input", state="attached")
    doctor.set_input_files("#uploader .uppy-Dashboard-input >> nth=0", [str(p) for p in slices])
    doctor.click("#uploader .uppy-StatusBar-actionBtn--upload")
    doctor.wait_for_selector("#uploader .uppy-StatusBar-progress", state="attached")
    doctor.wait_for_selector("#uploader .uppy-StatusBar.is-complete", timeout=60_000)
    doctor.wait_for_function(
        "() => document.querySelectorAll('#upload-results li.stored').length === 12", timeout=30_000
    )
    assert doctor.locator("#upload-results li.refused").count() == 0

    # And the ECG, through its own uploader on the same page.
    doctor.set_input_files(
        "#ecg-uploader .uppy-Dashboard-input >> nth=0", str(ecg_samples.DICOM_WAVEFORM)
    )
    doctor.click("#ecg-uploader .uppy-StatusBar-actionBtn--upload")
    doctor.wait_for_selector("#ecg-uploader .uppy-StatusBar.is-complete", timeout=60_000)
    doctor.wait_for_selector("#ecg-upload-results li.stored", timeout=30_000)
    assert "waveform_ecg.dcm: read" in doctor.inner_text("#ecg-upload-results")

    # The sending side's page shows the series' thumbnail but fetches neither the viewer's
    # code nor the slices until asked (a slow link does not pay for what it just sent).
    fetched: list[str] = []
    doctor.on("request", lambda request: fetched.append(request.url))
    doctor.goto(case_url)
    doctor.wait_for_load_state("networkidle")
    assert doctor.locator("#series-list .series").count() == 1
    assert "12 instances" in doctor.inner_text("#series-list")
    assert any("/rendered?" in url for url in fetched), "the thumbnail is shown"
    assert not [url for url in fetched if "/dwv" in url or url.endswith("/instances/")]
    assert not [url for url in fetched if "/instances/" in url and "/rendered" not in url]
    assert doctor.get_attribute("#viewer", "data-loaded") is None
    doctor.click("#series-list .open-series")
    doctor.wait_for_selector("#viewer[data-loaded='1']", timeout=60_000)
    assert doctor.get_attribute("#viewer", "data-error") is None
    assert any("/dwv" in url for url in fetched)
    assert len([u for u in fetched if "/instances/" in u and "/rendered" not in u]) == 12
    doctor.click("button[data-to=submitted]")
    doctor.wait_for_load_state("networkidle")
    assert doctor.get_attribute("#case-status", "data-status") == "submitted"

    reader = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    sign_in(reader, base, "rad1")
    reader.goto(f"{base}/cases/worklist")
    case_id = case_url.rstrip("/").split("/")[-1]
    row = reader.locator(f"tr[data-case='{case_id}']")
    assert "urgent" in row.inner_text()
    row.locator("button", has_text="Claim").click()
    reader.wait_for_url(f"**/cases/{case_id}")
    assert reader.get_attribute("#case-status", "data-status") == "claimed"

    # The viewer (dwv) loads the series from the case's DICOMweb and shows a frame.
    reader.wait_for_selector("#viewer[data-loaded='1']", timeout=60_000)
    reader.wait_for_selector("#layerGroup0 canvas", state="attached")
    assert reader.get_attribute("#viewer", "data-error") is None
    assert reader.get_attribute("#frame-slider", "max") == "11"
    assert reader.inner_text("#frame-number").endswith("/ 12")
    reader.fill("#frame-slider", "6")
    reader.dispatch_event("#frame-slider", "input")
    assert "7 / 12" in reader.inner_text("#frame-number")
    presets = reader.locator("#wl-preset option").all_inner_texts()
    assert {"lung", "bone", "soft tissue"} <= set(presets)
    reader.select_option("#wl-preset", "lung")
    assert reader.get_attribute("#viewer", "data-error") is None
    painted = reader.evaluate(
        """() => {
            const canvas = document.querySelector('#layerGroup0 canvas');
            const context = canvas.getContext('2d');
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let lit = 0;
            for (let i = 0; i < data.length; i += 4) if (data[i] > 10) lit++;
            return lit;
        }"""
    )
    assert painted > 1000, "the frame is drawn on the canvas"
    # A length measured with the ruler, in mm from PixelSpacing.
    reader.click("button[data-tool=Ruler]")
    reader.locator("#layerGroup0").scroll_into_view_if_needed()
    box = reader.locator("#layerGroup0").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    reader.mouse.move(x - 100, y)
    reader.mouse.down()
    reader.mouse.move(x, y, steps=5)
    reader.mouse.move(x + 100, y, steps=5)
    reader.mouse.up()
    reader.wait_for_function(
        "() => document.querySelector('#viewer').dataset.length", timeout=10_000
    )
    assert reader.inner_text("#measurement").endswith("mm")
    assert reader.get_attribute("#viewer", "data-length-unit") == "mm"
    assert float(reader.get_attribute("#viewer", "data-length")) > 10

    # The ECG on paper with the caliper viewer, and the machine measurements labelled.
    reader.wait_for_selector(".ecg-paper[data-state='ready'] svg", timeout=30_000)
    assert "machine measurement" in reader.inner_text(".ecg-measurements caption")
    assert "bpm" in reader.inner_text(".ecg-measurements .hr")
    shots = os.environ.get("TELEMED_SCREENSHOTS")
    if shots:
        reader.screenshot(path=f"{shots}/case-viewer.png", full_page=True)

    reader.fill("textarea[name=findings]", "3 cm spiculated mass, right upper lobe.")
    reader.fill("textarea[name=impression]", "Suspected lung cancer.")
    reader.check("input[name=critical]")
    reader.click("#sign-report")
    reader.wait_for_load_state("networkidle")
    doctor.goto(case_url)
    assert "Suspected lung cancer." in doctor.inner_text("#report")
    assert "CRITICAL FINDING" in doctor.inner_text("#report")


def test_a_chinese_doctors_uploader_speaks_chinese(app, world, live_http, browser):
    """Uppy's own words come from its Chinese locale on a Chinese page."""
    from telemed.db import write_intent
    from telemed.domain.case_states import CaseKind
    from telemed.services.accounts.context import actor_of
    from telemed.services.cases import cases

    with write_intent(True):
        doctor_user = world.user("gp_ts1")
        doctor_user.locale = "zh_Hans"  # the test users are set to English
        case = cases.open_case(
            actor_of(doctor_user),
            patient_id=world.patients["TS1"][0].id,
            kind=CaseKind.CONSULT,
            question="胸痛两周",
            target_specialist_id=world.user("card1").id,
        )
        case_id = case.id
        db.session.commit()
    db.session.remove()
    page = browser.new_context(locale="zh-CN").new_page()
    sign_in(page, live_http.url, "gp_ts1")
    page.goto(f"{live_http.url}/cases/{case_id}")
    page.wait_for_selector("#uploader .uppy-Dashboard-AddFiles-title")
    assert "将文件拖拽到这里" in page.inner_text("#uploader .uppy-Dashboard-AddFiles-title")
    assert "将文件拖拽到这里" in page.inner_text("#ecg-uploader .uppy-Dashboard-AddFiles-title")


def _written_as(paths, folder, syntax: str, little: bool):
    """The slices rewritten in ``syntax`` (native), pixel values unchanged."""
    import pydicom

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for path in paths:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<" if little else ">")).tobytes()
        target = folder / path.name
        pydicom.dcmwrite(target, ds, implicit_vr=little, little_endian=little, force_encoding=True)
        made.append(target)
    return made


def test_the_viewer_opens_implicit_vr_and_big_endian_series(
    app, world, browser, live_http, tmp_path
):
    """dwv asks for Explicit VR Little Endian: files stored in Implicit VR Little Endian or
    Explicit VR Big Endian are rewritten by the server and shown."""
    from telemed.services.accounts.context import actor_of
    from telemed.services.cases import dicom
    from tests.test_dicom_service import open_imaging_case

    case_id = open_imaging_case(world).id
    files = []
    for syntax, little in (("1.2.840.10008.1.2", True), ("1.2.840.10008.1.2.2", False)):
        slices = dicom_files.ct_series(tmp_path / f"src-{syntax}", 3)
        written = _written_as(slices, tmp_path / syntax, syntax, little)
        files += [(p.name, p) for p in written]
    outcomes = dicom.attach_files(actor_of(world.user("gp_ts1")), case_id, files)
    assert [o.status for o in outcomes] == ["stored"] * 6
    db.session.commit()
    db.session.remove()

    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    sign_in(page, live_http.url, "gp_ts1")
    page.goto(f"{live_http.url}/cases/{case_id}")
    series = page.locator("#series-list .series")
    assert series.count() == 2
    for number in range(2):
        series.nth(number).locator(".open-series").click()
        page.wait_for_selector("#viewer[data-loaded='1']", timeout=60_000)
        assert page.get_attribute("#viewer", "data-error") is None
        assert page.inner_text("#frame-number").endswith("/ 3")
        painted = page.evaluate(
            """() => {
                const canvas = document.querySelector('#layerGroup0 canvas');
                const data = canvas.getContext('2d')
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let lit = 0;
                for (let i = 0; i < data.length; i += 4) if (data[i] > 10) lit++;
                return lit;
            }"""
        )
        assert painted > 1000, "the frame is drawn on the canvas"
