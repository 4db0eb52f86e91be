"""The page-side ECG viewer in real Chromium: it shows the server's SVG, changes paper
speed and gain, and its caliper reads intervals, rates and amplitudes.

The page is a test-only template served by a small Flask app with the built bundle and
ECG routes that call the library, as the case pages do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask, Response, render_template, request, url_for
from flask_babel import Babel

from telemed import PROJECT_ROOT
from telemed.ecg import read_ecg, render_ecg_svg
from tests import browsing
from tests.conftest import ServerThread
from tests.ecg.samples import (
    DICOM_WAVEFORM,
    WFDB_ANNOTATIONS,
    WFDB_DATA,
    WFDB_HEADER,
    mit_beat_samples,
)

pytestmark = pytest.mark.browser


def demo_app() -> Flask:
    manifest = json.loads((PROJECT_ROOT / "static" / "dist" / "manifest.json").read_text())
    bundle = manifest["ecg-viewer.js"]  # built by `make deps` (static/build.mjs)
    recordings = {
        "holter": read_ecg([WFDB_HEADER, WFDB_DATA]),
        "twelve": read_ecg([DICOM_WAVEFORM]),
    }
    app = Flask(
        __name__,
        static_folder=str(PROJECT_ROOT / "static"),
        template_folder=str(Path(__file__).parent / "templates"),
    )
    Babel(app)  # the library's texts go through Flask-Babel, as in the service

    @app.get("/viewer/<name>")
    def page(name: str):
        return render_template(
            "ecg_viewer_demo.html",
            svg_url=f"/ecg/{name}.svg",
            bundle_url=url_for("static", filename=f"dist/{bundle}"),
        )

    @app.get("/ecg/<name>.svg")
    def svg(name: str):
        body = render_ecg_svg(
            recordings[name],
            speed_mm_s=request.args.get("speed", 25, type=float),
            gain_mm_mv=request.args.get("gain", 10, type=float),
        )
        return Response(body, mimetype="image/svg+xml")

    return app


@pytest.fixture(scope="module")
def server():
    with ServerThread(demo_app(), threads=4) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with browsing.launched() as browser:
        yield browser


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def open_viewer(page, server, name: str):
    page.goto(f"{server.url}/viewer/{name}")
    page.wait_for_selector("#viewer[data-state='ready']")
    return page.locator("#viewer output.ecg-readout")


def readout_values(readout) -> tuple[int, int, float]:
    return (
        int(readout.get_attribute("data-interval-ms")),
        int(readout.get_attribute("data-rate-bpm")),
        float(readout.get_attribute("data-amplitude-mv")),
    )


def test_viewer_shows_the_paper_and_a_default_caliper(page, server):
    readout = open_viewer(page, server, "twelve")
    svg = page.locator("#viewer svg.ecg-paper")
    assert svg.get_attribute("data-layout") == "12-lead"
    assert page.locator("#viewer svg .ecg-traces path").count() == 13
    assert readout_values(readout) == (800, 75, 1.0)
    assert "Interval 800 ms" in readout.text_content()
    assert "75 bpm" in readout.text_content()


def test_caliper_moves_by_keyboard_and_follows_speed_and_gain(page, server):
    readout = open_viewer(page, server, "twelve")
    second = page.locator("[data-marker='v2']")
    assert second.get_attribute("role") == "slider"
    second.focus()
    page.keyboard.press("Shift+ArrowRight")  # 20 mm + 5 mm = 25 mm
    assert readout_values(readout)[:2] == (1000, 60)
    page.keyboard.press("ArrowLeft")  # 24 mm at 25 mm/s
    assert readout_values(readout)[:2] == (960, 63)  # 62.5 rounds up

    page.get_by_role("button", name="50 mm/s").click()
    page.wait_for_selector("#viewer[data-state='ready'] svg[data-speed='50']")
    assert readout_values(readout)[:2] == (480, 125)  # the same 24 mm at 50 mm/s

    amplitude = page.locator("[data-marker='h2']")
    amplitude.focus()
    page.keyboard.press("Shift+ArrowDown")  # 10 mm + 5 mm
    assert readout_values(readout)[2] == 1.5
    page.get_by_role("button", name="20 mm/mV").click()
    page.wait_for_selector("#viewer[data-state='ready'] svg[data-gain='20']")
    assert readout_values(readout)[2] == 0.75  # 15 mm at 20 mm/mV
    assert page.get_by_role("button", name="20 mm/mV").get_attribute("aria-pressed") == "true"


def test_caliper_dragged_onto_two_annotated_beats_reads_their_interval(page, server):
    """Record 100's first two reference beats are 293 samples (813.9 ms) apart."""
    readout = open_viewer(page, server, "holter")
    first, second = mit_beat_samples(WFDB_ANNOTATIONS)[:2]
    svg = page.locator("#viewer svg.ecg-paper")
    box = svg.bounding_box()
    width_mm = float(svg.get_attribute("viewBox").split()[2])
    px_per_mm = box["width"] / width_mm
    left_mm = float(svg.get_attribute("data-paper-left"))

    def drag(marker: str, sample: int) -> None:
        handle = page.locator(f"[data-marker='{marker}']").bounding_box()
        page.mouse.move(handle["x"] + handle["width"] / 2, box["y"] + 40)
        page.mouse.down()
        target = box["x"] + (left_mm + sample / 360 * 25) * px_per_mm
        page.mouse.move(target, box["y"] + 40, steps=5)
        page.mouse.up()

    drag("v1", first)
    drag("v2", second)
    interval, rate, _amplitude = readout_values(readout)
    expected = (second - first) / 360 * 1000
    assert interval == pytest.approx(expected, abs=8)
    assert rate == pytest.approx(60000 / expected, abs=1)


def test_markers_are_reachable_with_the_tab_key(page, server):
    open_viewer(page, server, "holter")
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.dataset.marker || ''"))
    assert {"v1", "v2", "h1", "h2"} <= set(reached)
