"""The case page's DICOM viewer in headless Chromium: every shared sample the server stores
(sent by STOW with dicomweb-client), every frame paged, the canvas compared with the
server's rendering of the same frame, and so for Modality and VOI LUT Sequences and
per-frame functional groups; overlays drawn where pydicom puts them and toggled; paging by
wheel, keys and cine; the ruler's readout in mm or in pixels; a segmentation refused in
words."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from tests import browsing
from tests.test_cases_browser import sign_in
from tests.test_dicomweb_client_api import sent  # noqa: F401 (fixture)
from tests.test_dicomweb_http import imaging_case  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

# Mean absolute difference per pixel and channel (0-255) between the viewer's canvas,
# resampled to the frame's grid, and the server's PNG of that frame. docs/imaging.md says
# why this bound.
BOUND = 2.0
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "viewer"

# The canvas read back on the frame's grid: each canvas pixel is put in the frame pixel
# dwv drew there (its own display-to-plane mapping, a tie between two frame pixels
# resolved as the browser resolves it), and each frame pixel is the mean of
# the canvas pixels that show it; pixels the canvas does not show (a frame larger than
# the canvas) have no count and are left out of the comparison.
CANVAS_ON_FRAME_GRID = """async ([columns, rows]) => {
  // dwv redraws on the next animation frame: read what it drew after it.
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const group = window.telemedViewer.app.getLayerGroupByDivId('layerGroup0');
  const layer = group.getActiveViewLayer();
  const canvas = document.querySelector('#layerGroup0 canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const ratio = canvas.width / canvas.getBoundingClientRect().width;
  const sums = new Float64Array(columns * rows * 3);
  const counts = new Uint32Array(columns * rows);
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const px = (x + 0.5) / ratio, py = (y + 0.5) / ratio;
      const pos = layer.displayToPlanePos({ getX: () => px, getY: () => py });
      // A centre exactly on the edge of two frame pixels (every canvas pixel at a zoom of
      // 1/2) shows the one before it: Chromium's nearest-neighbour sampling breaks the tie
      // downward, where dwv's displayToPlaneIndex (floor) takes the one after.
      const c = Math.ceil(pos.getX()) - 1, r = Math.ceil(pos.getY()) - 1;
      if (c < 0 || r < 0 || c >= columns || r >= rows) continue;
      const at = r * columns + c, from = (y * canvas.width + x) * 4;
      for (let k = 0; k < 3; k++) sums[at * 3 + k] += data[from + k];
      counts[at] += 1;
    }
  }
  const fit = Math.min(canvas.width / columns, canvas.height / rows);
  return { sums: Array.from(sums), counts: Array.from(counts), fit };
}"""


def canvas_on_grid(page, columns: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    got = page.evaluate(CANVAS_ON_FRAME_GRID, [columns, rows])
    counts = np.asarray(got["counts"], dtype=float).reshape(rows, columns)
    sums = np.asarray(got["sums"], dtype=float).reshape(rows, columns, 3)
    # A frame larger than the canvas shows about fit² of its pixels; a smaller one all.
    expected = rows * columns * min(1.0, got["fit"]) ** 2
    assert (counts > 0).sum() > 0.9 * expected, "the frame is on the canvas"
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[..., None], counts > 0


def server_frame(page, url: str) -> np.ndarray:
    answer = page.request.get(url, headers={"Accept": "image/png"})
    for _attempt in range(20):
        # The page's thumbnails may hold this user's render slots a moment (429): the
        # answer says when to ask again, as any client would.
        if answer.status != 429:
            break
        page.wait_for_timeout(1000 * int(answer.headers.get("retry-after", "1")))
        answer = page.request.get(url, headers={"Accept": "image/png"})
    assert answer.status == 200, (url, answer.status)
    return np.asarray(Image.open(io.BytesIO(answer.body())).convert("RGB"), dtype=float)


def shown_frame(page) -> tuple[int, int]:
    readout = page.locator("#frame-number")
    return int(readout.get_attribute("data-frame")), int(readout.get_attribute("data-frames"))


def test_every_stored_sample_every_frame_matches_the_servers_rendering(sent):  # noqa: F811
    _web, files, _token, root = sent
    base = root.split("/cases/")[0]
    case_page = root.removesuffix("/dicomweb")
    by_series = {f.ds.SeriesInstanceUID: f for f in files}
    measured: dict[str, float] = {}
    with browsing.launched() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        sign_in(page, base, "gp_ts1")
        page.goto(case_page)
        items = page.locator("#series-list .series")
        assert items.count() == len(files)
        for number in range(items.count()):
            item = items.nth(number)
            sample = by_series[item.get_attribute("data-series")]
            item.locator(".open-series").click()
            if not sample.decodable:
                # Stored (the segmentation, deflated): refused in words, never a hang.
                assert "cannot be displayed" in page.inner_text("#viewer-status")
                continue
            page.wait_for_selector("#viewer[data-loaded='1']", timeout=60_000)
            assert page.get_attribute("#viewer", "data-error") is None, sample.name
            assert shown_frame(page) == (1, sample.frames), sample.name
            rows, columns = int(sample.ds.Rows), int(sample.ds.Columns)
            worst = 0.0
            for frame in range(1, sample.frames + 1):
                if frame > 1:
                    page.fill("#frame-slider", str(frame - 1))
                    page.dispatch_event("#frame-slider", "input")
                assert shown_frame(page) == (frame, sample.frames), sample.name
                canvas, seen = canvas_on_grid(page, columns, rows)
                study, series, sop = sample.uids
                expected = server_frame(
                    page,
                    f"{root}/studies/{study}/series/{series}/instances/{sop}"
                    f"/frames/{frame}/rendered?accept=image/png",
                )
                assert expected.shape[:2] == (rows, columns)
                difference = float(np.abs(canvas[seen] - expected[seen]).mean())
                worst = max(worst, difference)
            measured[sample.name] = worst
            if os.environ.get("TELEMED_VIEWER_SHOTS") == "1":
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.locator("#viewer").screenshot(path=str(SHOTS / f"{sample.name}.png"))
        assert problems == []
    print("mean absolute difference per sample:", measured)
    assert {name: d for name, d in measured.items() if d > BOUND} == {}
    assert len(measured) == len([f for f in files if f.decodable])


def open_sample(page, name: str, by_name: dict) -> None:
    series = by_name[name].ds.SeriesInstanceUID
    page.click(f"#series-list .series[data-series='{series}'] .open-series")
    page.wait_for_selector("#viewer[data-loaded='1']", timeout=60_000)
    assert page.get_attribute("#viewer", "data-error") is None


def wait_frame(page, number: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('#frame-number').dataset.frame === String(n)",
        arg=number,
        timeout=5000,
    )
    assert page.inner_text("#frame-number") == f"{number} / 10"


def draw_ruler(page) -> None:
    page.click("button[data-tool=Ruler]")
    box = page.locator("#layerGroup0").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 100, y)
    page.mouse.down()
    page.mouse.move(x, y, steps=5)
    page.mouse.move(x + 100, y, steps=5)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('#viewer').dataset.length")


def test_frames_page_by_wheel_keys_and_cine_and_the_ruler_says_its_unit(sent):  # noqa: F811
    _web, files, _token, root = sent
    base = root.split("/cases/")[0]
    by_name = {f.name: f for f in files}
    with browsing.launched() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        sign_in(page, base, "gp_ts1")
        page.goto(root.removesuffix("/dicomweb"))

        # The 10-frame MR: every way of paging moves the frame and its readout.
        open_sample(page, "emri_small.dcm", by_name)
        wait_frame(page, 1)
        page.locator("#layerGroup0").hover()
        page.mouse.wheel(0, 120)
        assert problems == []
        wait_frame(page, 2)
        page.mouse.wheel(0, -120)
        wait_frame(page, 1)
        page.mouse.wheel(0, -120)  # not past the first
        page.wait_for_timeout(200)
        wait_frame(page, 1)
        page.focus("#layerGroup0")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        wait_frame(page, 3)
        page.keyboard.press("End")
        wait_frame(page, 10)
        page.keyboard.press("Home")
        wait_frame(page, 1)
        page.click("#cine")
        assert page.get_attribute("#cine", "aria-pressed") == "true"
        wait_frame(page, 10)
        wait_frame(page, 2)  # and round again
        page.click("#cine")
        assert page.get_attribute("#cine", "aria-pressed") == "false"
        stopped = shown_frame(page)
        page.wait_for_timeout(400)
        assert shown_frame(page) == stopped

        # No Pixel Spacing: the length is in pixels, and says so.
        draw_ruler(page)
        assert page.get_attribute("#viewer", "data-length-unit") == "px"
        assert "pixel spacing" in page.inner_text("#measurement")

        # Pixel Spacing 0.195 mm: in mm.
        open_sample(page, "MR2_UNCR.dcm", by_name)
        assert page.inner_text("#measurement") == "–"
        assert shown_frame(page) == (1, 1)
        assert page.is_disabled("#cine")
        draw_ruler(page)
        assert page.get_attribute("#viewer", "data-length-unit") == "mm"
        assert page.inner_text("#measurement").endswith(" mm")
        assert 10 < float(page.get_attribute("#viewer", "data-length")) < 200
        assert problems == []


def test_a_segmentation_is_refused_in_words_not_left_loading(
    world,
    imaging_case,  # noqa: F811
    live_http,
    tmp_path,
):
    """A 1-bit SEG the server stores and can decode: the page says why it is not shown."""
    import numpy as np
    import pydicom
    from pydicom.pixels import pack_bits
    from pydicom.uid import generate_uid

    from tests import dicom_files, factories
    from tests.test_dicomweb_http import client_for

    ds = pydicom.dcmread(dicom_files.sample("emri_small.dcm"))
    mask = (ds.pixel_array > ds.pixel_array.mean()).astype(np.uint8)
    ds.Modality = "SEG"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PixelData = pack_bits(mask)
    token = factories.token_for(world.user("gp_ts1"))
    answer = client_for(live_http, imaging_case, token).store_instances([ds])
    assert "FailedSOPSequence" not in answer
    with browsing.launched() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        sign_in(page, live_http.url, "gp_ts1")
        page.goto(f"{live_http.url}/cases/{imaging_case}")
        item = page.locator("#series-list .series")
        assert item.get_attribute("data-decodable") == "1"
        item.locator(".open-series").click()
        page.wait_for_selector("#viewer[data-refused='segmentation']", timeout=5000)
        assert "segmentation (SEG)" in page.inner_text("#viewer-status")
        assert "Loading" not in page.inner_text("#viewer-status")


def with_new_series(ds):
    """``ds`` as an instance of a series of its own (pydicom's test files share UIDs)."""
    from pydicom.uid import generate_uid

    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def canvas_against_server(page, root: str, ds, frame: int) -> float:
    """The mean absolute difference of the shown frame against the server's rendering."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    canvas, seen = canvas_on_grid(page, columns, rows)
    expected = server_frame(
        page,
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/{frame}/rendered?accept=image/png",
    )
    assert expected.shape[:2] == (rows, columns)
    return float(np.abs(canvas[seen] - expected[seen]).mean())


def test_lut_sequences_and_per_frame_groups_are_applied_as_the_server_applies_them(
    world,
    imaging_case,  # noqa: F811
    live_http,
    tmp_path,
):
    """A Modality LUT Sequence (with a window in its output's units), a VOI LUT Sequence,
    and a 10-frame file whose functional groups give each frame its own rescale and
    window: every frame's canvas within the bound of the server's rendering, which the
    plain tests (tests/test_rendering_pipeline.py) hold to pydicom's own pipeline and to
    be far from the same values shown without their LUT."""
    from tests import dicom_files, factories
    from tests.test_dicomweb_http import client_for

    made = dicom_files.with_lut_sequences(tmp_path)
    made["frame_groups"] = dicom_files.with_frame_groups(tmp_path)
    # pydicom's own: a signed image through a Modality LUT, an 8-bit one through a VOI LUT.
    for name in ("mlut_18.dcm", "vlut_04.dcm"):
        made[name] = get_testdata_file(name)
    datasets = {name: with_new_series(pydicom.dcmread(path)) for name, path in made.items()}
    token = factories.token_for(world.user("gp_ts1"))
    answer = client_for(live_http, imaging_case, token).store_instances(list(datasets.values()))
    assert "FailedSOPSequence" not in answer
    root = f"{live_http.url}/cases/{imaging_case}/dicomweb"
    measured = {}
    with browsing.launched() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        sign_in(page, live_http.url, "gp_ts1")
        page.goto(f"{live_http.url}/cases/{imaging_case}")
        for name, ds in datasets.items():
            page.click(f"#series-list .series[data-series='{ds.SeriesInstanceUID}'] .open-series")
            page.wait_for_selector("#viewer[data-loaded='1']", timeout=60_000)
            assert page.get_attribute("#viewer", "data-error") is None, name
            frames = int(ds.get("NumberOfFrames") or 1)
            worst = 0.0
            for frame in range(1, frames + 1):
                if frame > 1:
                    page.fill("#frame-slider", str(frame - 1))
                    page.dispatch_event("#frame-slider", "input")
                assert shown_frame(page) == (frame, frames), name
                worst = max(worst, canvas_against_server(page, root, ds, frame))
            measured[name] = worst
            if name.startswith("vlut"):
                assert page.input_value("#wl-preset") == "voilut"
        assert problems == []
    print("LUT sequences and frame groups, mean absolute difference:", measured)
    assert {name: d for name, d in measured.items() if d > BOUND} == {}


def test_overlays_are_drawn_where_the_file_puts_them_and_can_be_hidden(
    world,
    imaging_case,  # noqa: F811
    live_http,
):
    """pydicom's examples_overlay.dcm and MR-SIEMENS-DICOM-WithOverlays.dcm (MRs with a
    Siemens graphics overlay in 6000): with the overlays shown, exactly the pixels of
    pydicom's overlay plane change on the canvas; hidden, the canvas is the server's
    rendering again."""
    from tests import factories
    from tests.test_dicomweb_http import client_for

    files = ["examples_overlay.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm"]
    datasets = [with_new_series(pydicom.dcmread(get_testdata_file(name))) for name in files]
    token = factories.token_for(world.user("gp_ts1"))
    answer = client_for(live_http, imaging_case, token).store_instances(datasets)
    assert "FailedSOPSequence" not in answer
    root = f"{live_http.url}/cases/{imaging_case}/dicomweb"
    with browsing.launched() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        sign_in(page, live_http.url, "gp_ts1")
        page.goto(f"{live_http.url}/cases/{imaging_case}")
        for ds in datasets:
            overlay_toggles(page, root, ds)
        assert problems == []


def overlay_toggles(page, root: str, ds) -> None:
    plane = ds.overlay_array(0x6000).astype(bool)
    assert 0 < plane.sum() < plane.size
    rows, columns = int(ds.Rows), int(ds.Columns)
    page.click(f"#series-list .series[data-series='{ds.SeriesInstanceUID}'] .open-series")
    page.wait_for_selector("#viewer[data-loaded='1']", timeout=60_000)
    assert page.get_attribute("#viewer", "data-overlays") == "1"
    button = page.locator("#overlays")
    assert button.is_enabled() and button.get_attribute("aria-pressed") == "true"
    shown, seen = canvas_on_grid(page, columns, rows)
    button.click()
    assert button.get_attribute("aria-pressed") == "false"
    hidden, _seen = canvas_on_grid(page, columns, rows)
    changed = np.abs(shown - hidden).max(axis=2) > 0
    assert np.array_equal(changed[seen], plane[seen])
    assert np.all(shown[plane & seen] == [255, 255, 0])  # yellow, unlike any grey
    assert canvas_against_server(page, root, ds, 1) <= BOUND
    button.click()
    assert button.get_attribute("aria-pressed") == "true"
    again, _seen = canvas_on_grid(page, columns, rows)
    assert np.array_equal(again[seen], shown[seen])
