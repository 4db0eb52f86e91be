"""A real viewer on telemed's DICOMweb: Cornerstone3D's DICOMweb image loader (wadors, as
OHIF uses it) in headless Chromium opens a case's series, every frame, for every transfer
syntax of the samples the server stores, and its decoded pixels equal pydicom's.

The harness (tests/browser/cornerstone/, bundled by static/build.mjs) is served beside the
app on the same origin by the test server only; the page signs in like a person."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid
from werkzeug.middleware.shared_data import SharedDataMiddleware

from telemed.extensions import db
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom
from tests import browsing, dicom_files
from tests.conftest import ServerThread
from tests.test_cases_browser import sign_in
from tests.test_dicom_service import open_imaging_case
from tests.test_dicomweb_client_api import SAMPLES, implicit_and_big_endian, renamed

pytestmark = pytest.mark.browser

HARNESS = Path(__file__).parent / "browser" / "cornerstone" / "dist"
# pydicom has no decoder for Deflated Image Frame Compression: nothing to compare with.
UNCOMPARABLE = {"liver_deflate.dcm"}
JS_TYPES = {
    "Uint8Array": "u1",
    "Uint8ClampedArray": "u1",
    "Int8Array": "i1",
    "Uint16Array": "<u2",
    "Int16Array": "<i2",
    "Float32Array": "<f4",
}


@pytest.fixture
def harness_http(app):
    if not (HARNESS / "harness.js").exists():
        pytest.fail("the harness is not built: run node static/build.mjs")
    served = SharedDataMiddleware(app, {"/__harness__": str(HARNESS)})
    with ServerThread(served) as server:
        yield server


def frame_digest(ds: pydicom.Dataset, index: int, js_type: str, length: int) -> str:
    pixels = pydicom.pixels.pixel_array(ds, index=index)
    if pixels.ndim == 3 and length == pixels.shape[0] * pixels.shape[1] * 4:
        alpha = np.full((*pixels.shape[:2], 1), 255, dtype=pixels.dtype)
        pixels = np.concatenate([pixels, alpha], axis=2)  # Cornerstone's RGBA
    data = np.ascontiguousarray(pixels).astype(JS_TYPES[js_type]).tobytes()
    return hashlib.sha256(data).hexdigest()


def test_cornerstone_opens_every_stored_syntax_with_pydicoms_pixels(
    app, world, harness_http, tmp_path
):
    case_id = open_imaging_case(world).id
    study = generate_uid()
    paths = [
        renamed(dicom_files.sample(name), tmp_path / name, study) for name in SAMPLES
    ] + implicit_and_big_endian(dicom_files.sample("emri_small.dcm"), tmp_path, study)
    outcomes = dicom.attach_files(
        actor_of(world.user("gp_ts1")), case_id, [(p.name, p) for p in paths]
    )
    assert [o.status for o in outcomes] == ["stored"] * len(paths)
    db.session.commit()
    db.session.remove()
    base = harness_http.url
    root = f"{base}/cases/{case_id}/dicomweb"

    with browsing.launched() as browser:
        page = browser.new_context().new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        sign_in(page, base, "gp_ts1")
        page.goto(f"{base}/__harness__/index.html")
        page.wait_for_function("() => typeof window.openSeries === 'function'", timeout=30_000)
        compared = set()
        for path in paths:
            ds = pydicom.dcmread(path)
            if path.name in UNCOMPARABLE:
                continue
            frames = page.evaluate(
                "([root, study, series]) => window.openSeries(root, study, series)",
                [root, study, ds.SeriesInstanceUID],
            )
            count = int(ds.get("NumberOfFrames") or 1)
            assert [f["number"] for f in frames] == list(range(1, count + 1)), path.name
            for frame in frames:
                assert (frame["rows"], frame["columns"]) == (ds.Rows, ds.Columns)
                expected = frame_digest(ds, frame["number"] - 1, frame["type"], frame["length"])
                assert frame["sha256"] == expected, (path.name, frame)
            compared.add(str(ds.file_meta.TransferSyntaxUID))
        assert problems == []
    assert compared == set(SAMPLES.values()) - {"1.2.840.10008.1.2.8.1"} | {
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.2",
    }
