"""ECG paper: grid, calibration, the 3 × 4 layout with a rhythm strip, traces to scale."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from telemed.ecg import read_ecg, render_ecg_svg
from tests.ecg.samples import AECG_FULL, AECG_MINIMUM, DICOM_WAVEFORM, WFDB_DATA, WFDB_HEADER

SVG = "{http://www.w3.org/2000/svg}"
TWELVE = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="module")
def twelve_lead():
    return read_ecg([DICOM_WAVEFORM])


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314  (our own output, not user input)


def traces(root: ET.Element) -> list[ET.Element]:
    group = root.find(f"{SVG}g[@class='ecg-traces']")
    return group.findall(f"{SVG}path")


def decode_trace(path: ET.Element) -> tuple[np.ndarray, np.ndarray]:
    """Absolute (x, y) in mm of paper from a trace's relative path and its transform."""
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path.get("d"))]
    tx, ty, sx, sy = map(
        float,
        re.match(r"translate\((\S+) (\S+)\) scale\((\S+) (\S+)\)", path.get("transform")).groups(),
    )
    points = np.array(numbers).reshape(-1, 2)
    steps = np.cumsum(points, axis=0)  # first pair is the absolute start, the rest relative
    return tx + steps[:, 0] * sx, ty + steps[:, 1] * sy


def test_twelve_leads_in_three_rows_of_four_plus_lead_ii_rhythm_strip(twelve_lead):
    root = parse(render_ecg_svg(twelve_lead))
    assert root.get("data-layout") == "12-lead"
    strips = traces(root)
    assert [p.get("data-lead") for p in strips] == [
        "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "II",
    ]  # fmt: skip
    rows = {p.get("data-lead") + p.get("data-row") for p in strips}
    assert {"I0", "aVR0", "V10", "V40", "II1", "aVL1", "V21", "V51", "III2", "aVF2", "V32"} <= rows
    rhythm = strips[-1]
    assert rhythm.get("data-row") == "3"
    assert rhythm.get("data-samples") == "0:10000"  # the whole 10 s
    # the columns take successive 2.5 s of the recording
    assert [p.get("data-samples") for p in strips[0:12:3]] == [
        "0:2500",
        "2500:5000",
        "5000:7500",
        "7500:10000",
    ]
    labels = [t.text for t in root.find(f"{SVG}g[@class='ecg-labels']")]
    assert labels == [*TWELVE, "II"]


def test_grid_is_a_pattern_of_1_mm_and_5_mm_lines(twelve_lead):
    root = parse(render_ecg_svg(twelve_lead))
    pattern = root.find(f"{SVG}defs/{SVG}pattern")
    assert pattern.get("id") == "ecg-grid"
    assert (pattern.get("width"), pattern.get("height")) == ("5", "5")
    assert pattern.get("patternUnits") == "userSpaceOnUse"
    minor, major = pattern.findall(f"{SVG}path")
    assert minor.get("d") == "M1 0V5M2 0V5M3 0V5M4 0V5M0 1H5M0 2H5M0 3H5M0 4H5"
    assert major.get("d") == "M0 0H5M0 0V5"
    paper = root.find(f"{SVG}rect[@class='ecg-grid']")
    assert paper.get("fill") == "url(#ecg-grid)"
    # the page is in millimetres
    width = float(root.get("viewBox").split()[2])
    assert root.get("width") == f"{width:g}mm"


@pytest.mark.parametrize(("speed", "gain"), [(25, 10), (50, 20), (25, 5)])
def test_calibration_pulse_is_1_mv_by_200_ms_at_each_row(twelve_lead, speed, gain):
    root = parse(render_ecg_svg(twelve_lead, speed_mm_s=speed, gain_mm_mv=gain))
    d = root.find(f"{SVG}path[@class='ecg-calibration']").get("d")
    pulses = re.findall(
        r"M([-\d.]+) ([-\d.]+)H([-\d.]+)V([-\d.]+)H([-\d.]+)V([-\d.]+)H([-\d.]+)", d
    )
    assert len(pulses) == 4  # three lead rows and the rhythm strip
    for _start, base, rise, top, fall, back, _end in pulses:
        assert float(base) - float(top) == gain  # 1 mV tall
        assert float(back) == float(base)
        assert float(fall) - float(rise) == pytest.approx(0.2 * speed)  # 200 ms wide
    assert root.get("data-speed") == str(speed) and root.get("data-gain") == str(gain)


def test_traces_are_drawn_to_scale(twelve_lead):
    """25 mm/s and 10 mm/mV: every drawn point sits where the sample puts it."""
    root = parse(render_ecg_svg(twelve_lead))
    rhythm = traces(root)[-1]
    x, y = decode_trace(rhythm)
    left = float(root.get("data-paper-left"))
    values = twelve_lead.lead("II")
    indexes = np.rint((x - left) / 25 * 1000).astype(int)  # mm → ms → sample at 1000 Hz
    assert indexes[0] == 0 and indexes[-1] == 9999
    baseline = float(rhythm.get("transform").split()[1].rstrip(")"))
    expected = baseline - (values[indexes] - np.median(values)) / 1000 * 10
    assert np.abs(y - expected).max() <= 0.051  # rounded to 0.1 mm
    # The tallest R wave survives the min/max reduction.
    assert (baseline - y).max() == pytest.approx((values.max() - np.median(values)) / 100, abs=0.06)


def test_one_path_per_strip_and_whole_numbers_in_paths(twelve_lead):
    svg = render_ecg_svg(twelve_lead)
    assert svg.count("<path") == 2 + 1 + 13 + 1  # grid (2), calibration, strips, separators
    for path in traces(parse(svg)):
        assert re.fullmatch(r"M-?\d+ -?\d+l(-?\d+ )*-?\d+", path.get("d"))
    assert len(svg) < 150_000


def test_two_lead_holter_record_draws_what_exists_in_the_chosen_window():
    signal = read_ecg([WFDB_HEADER, WFDB_DATA])
    root = parse(render_ecg_svg(signal, start_s=60))
    assert root.get("data-layout") == "strips"
    assert root.get("data-start") == "60"
    strips = traces(root)
    assert [p.get("data-lead") for p in strips] == ["II", "V5"]
    assert [p.get("data-samples") for p in strips] == ["21600:25200", "21600:25200"]
    labels = [t.text for t in root.find(f"{SVG}g[@class='ecg-labels']")]
    assert labels == ["II (MLII)", "V5"]
    assert len(re.findall(r"H", root.find(f"{SVG}path[@class='ecg-calibration']").get("d"))) == 6


def test_window_past_the_end_is_moved_back_inside():
    signal = read_ecg([WFDB_HEADER, WFDB_DATA])
    root = parse(render_ecg_svg(signal, start_s=5000))
    assert float(root.get("data-start")) == pytest.approx(650000 / 360 - 10)
    assert traces(root)[0].get("data-samples") == "646400:650000"


def test_derived_leads_are_marked(tmp_path):
    source = read_ecg([AECG_FULL])
    path = tmp_path / "two.csv"
    rows = "\n".join(f"{a},{b}" for a, b in zip(source.lead("I"), source.lead("II"), strict=True))
    path.write_text(f"# sampling_rate=500\nI,II\n{rows}\n")
    root = parse(render_ecg_svg(read_ecg([path])))
    derived = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "derived"]
    assert derived == ["III", "aVR", "aVL", "aVF"]
    assert "derived: III, aVR, aVL, aVF" in root.find(f"{SVG}text[@class='ecg-scale']").text


def test_a_recording_shorter_than_the_window_is_drawn_as_far_as_it_goes():
    root = parse(render_ecg_svg(read_ecg([AECG_MINIMUM])))
    (strip,) = traces(root)
    assert strip.get("data-samples") == "0:13"
    x, _y = decode_trace(strip)
    left = float(root.get("data-paper-left"))
    assert (x[0], x[-1]) == (left, pytest.approx(left + 12 * 25 / 500))  # 13 samples at 500 Hz


def test_bad_paper_settings_are_refused(twelve_lead):
    with pytest.raises(ValueError, match="positive"):
        render_ecg_svg(twelve_lead, speed_mm_s=0)
