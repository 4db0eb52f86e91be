"""ECG paper as SVG: 1 mm and 5 mm grid, calibration pulses, 3 × 4 leads and a rhythm strip.

Units are millimetres of paper (the viewBox), so the page prints to scale. Each lead
strip is one ``<path>`` in sample units (x: sample index, y: 0.1 mm) under a transform,
which keeps the numbers small whole numbers; ``vector-effect`` keeps the line width
constant under that transform. Above ``max_points_per_mm`` the samples are reduced to
each bin's minimum and maximum, in time order, so no peak is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from flask_babel import gettext as _

from telemed.ecg.leads import STANDARD_LEADS, is_alias_label
from telemed.ecg.signal import EcgSignal

PAPER_SPEEDS = (25.0, 50.0)
PAPER_GAINS = (5.0, 10.0, 20.0)
TWELVE_LEAD_COLUMNS = (
    ("I", "II", "III"),
    ("aVR", "aVL", "aVF"),
    ("V1", "V2", "V3"),
    ("V4", "V5", "V6"),
)
RHYTHM_LEAD = "II"
CALIBRATION_MV = 1.0
CALIBRATION_S = 0.2
TOP_MARGIN_MM = 5.0
BOTTOM_MARGIN_MM = 10.0
RIGHT_MARGIN_MM = 5.0
Y_UNITS_PER_MM = 10  # path y coordinates are tenths of a millimetre


@dataclass(frozen=True)
class _Strip:
    lead: str
    row: int
    x_mm: float
    start_s: float
    seconds: float


def _num(value: float) -> str:
    """A coordinate with at most 3 decimals and no trailing zeros."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value >= 1 or value == 0 else f"{value:.3f}"


def _round_up(value: float, step: float = 5.0) -> float:
    return math.ceil(value / step) * step


def _layout(signal: EcgSignal, window_s: float) -> tuple[list[_Strip], int, bool]:
    """Strips on the page, the number of rows, and whether it is the 12-lead layout."""
    has_twelve = all(signal.has_lead(name) for name in STANDARD_LEADS)
    strips: list[_Strip] = []
    if has_twelve:
        column_s = window_s / len(TWELVE_LEAD_COLUMNS)
        for column, leads in enumerate(TWELVE_LEAD_COLUMNS):
            for row, lead in enumerate(leads):
                strips.append(_Strip(lead, row, -1.0, column * column_s, column_s))
        rows = 3
        strips.append(_Strip(RHYTHM_LEAD, rows, -1.0, 0.0, window_s))
        rows += 1
        extras = [name for name in signal.leads if name not in STANDARD_LEADS]
    else:
        rows = 0
        extras = list(signal.leads)
    for lead in extras:
        strips.append(_Strip(lead, rows, -1.0, 0.0, window_s))
        rows += 1
    return strips, rows, has_twelve


def _reduce(values: np.ndarray, bin_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample indexes and values, reduced to each bin's min and max in time order."""
    count = len(values)
    if bin_size < 3 or count < 2 * bin_size:
        return np.arange(count), values
    bins = count // bin_size
    body = values[: bins * bin_size].reshape(bins, bin_size)
    low, high = body.argmin(axis=1), body.argmax(axis=1)
    first, second = np.minimum(low, high), np.maximum(low, high)
    offsets = np.arange(bins) * bin_size
    index = np.empty(bins * 2, dtype=np.int64)
    index[0::2] = first + offsets
    index[1::2] = second + offsets
    # keep the first and last samples so that strips meet their neighbours
    index = np.concatenate([[0], index, np.arange(bins * bin_size, count), [count - 1]])
    keep = np.ones(len(index), dtype=bool)
    keep[1:] = np.diff(index) != 0
    index = index[keep]
    return index, values[index]


def _trace_path(values_uv: np.ndarray, gain: float, bin_size: int) -> str:
    """Path data in sample × 0.1 mm units, relative moves after the first point."""
    if len(values_uv) == 0:
        return ""
    baseline = float(np.median(values_uv))
    scale = -gain * Y_UNITS_PER_MM / 1000.0  # µV → tenths of a mm, up is negative
    y = np.rint((values_uv - baseline) * scale)
    np.clip(y, -30000, 30000, out=y)
    x, y = _reduce(y.astype(np.int64), bin_size)
    if len(x) == 1:
        return f"M{int(x[0])} {int(y[0])}h0"
    steps = np.empty((len(x) - 1) * 2, dtype=np.int64)
    steps[0::2] = np.diff(x)
    steps[1::2] = np.diff(y)
    return f"M{int(x[0])} {int(y[0])}l" + " ".join(map(str, steps.tolist()))


def render_ecg_svg(
    signal: EcgSignal,
    *,
    start_s: float = 0.0,
    window_s: float = 10.0,
    speed_mm_s: float = 25.0,
    gain_mm_mv: float = 10.0,
    max_points_per_mm: float = 10.0,
    id_prefix: str = "ecg",
) -> str:
    """The recording on standard ECG paper, as an SVG document.

    With all twelve standard leads: four columns (I–III, aVR–aVF, V1–V3, V4–V6) of
    ``window_s / 4`` seconds each, then a lead II rhythm strip over the whole window, then
    any other leads. With fewer leads (a 2-lead Holter, a single lead): one full-width
    strip per lead. The window starts at ``start_s``, moved back so that it fits inside
    the recording; a recording shorter than the window is drawn as far as it goes.
    Speeds 25/50 mm/s and gains 5/10/20 mm/mV are the paper's; other positive values work.
    """
    if speed_mm_s <= 0 or gain_mm_mv <= 0 or window_s <= 0:
        raise ValueError("speed, gain and window must be positive")
    rate = signal.sampling_rate
    start_s = max(0.0, min(float(start_s), signal.duration_s - window_s))

    strips, rows, twelve = _layout(signal, window_s)
    calibration_w = CALIBRATION_S * speed_mm_s
    left = _round_up(calibration_w + 4.0)
    row_h = _round_up(max(25.0, 3.5 * gain_mm_mv))
    width = left + window_s * speed_mm_s + RIGHT_MARGIN_MM
    height = TOP_MARGIN_MM + rows * row_h + BOTTOM_MARGIN_MM
    # Whole samples per min/max bin: two points per bin at most max_points_per_mm.
    bin_size = int(2 * rate / (speed_mm_s * max_points_per_mm))
    x_scale = speed_mm_s / rate
    y_scale = 1.0 / Y_UNITS_PER_MM

    def baseline_y(row: int) -> float:
        return TOP_MARGIN_MM + row * row_h + round(row_h * 0.6)

    grid = f"{id_prefix}-grid"
    derived = set(signal.derived_leads)
    out: list[str] = [
        '<svg xmlns="http://www.w3.org/2000/svg"'
        f' width="{_num(width)}mm" height="{_num(height)}mm"'
        f' viewBox="0 0 {_num(width)} {_num(height)}"'
        f' class="ecg-paper" role="img"'
        f' data-speed="{_num(speed_mm_s)}" data-gain="{_num(gain_mm_mv)}"'
        f' data-start="{_num(start_s)}" data-window="{_num(window_s)}"'
        f' data-duration="{_num(signal.duration_s)}" data-paper-left="{_num(left)}"'
        f' data-layout="{"12-lead" if twelve else "strips"}">',
        f"<title>{escape(_('ECG, %(count)d leads', count=len(signal.leads)))}</title>",
        "<defs>"
        f'<pattern id="{grid}" width="5" height="5" patternUnits="userSpaceOnUse">'
        '<path d="M1 0V5M2 0V5M3 0V5M4 0V5M0 1H5M0 2H5M0 3H5M0 4H5"'
        ' stroke="#f3c4c4" stroke-width=".08"/>'
        '<path d="M0 0H5M0 0V5" stroke="#e08a8a" stroke-width=".25"/>'
        "</pattern></defs>",
        f'<rect width="{_num(width)}" height="{_num(height)}" fill="#fff"/>',
        f'<rect class="ecg-grid" width="{_num(width)}" height="{_num(height)}"'
        f' fill="url(#{grid})" stroke="#e08a8a" stroke-width=".25"/>',
    ]

    calibration = []
    for row in range(rows):
        base = baseline_y(row)
        top = base - CALIBRATION_MV * gain_mm_mv
        calibration.append(
            f"M{_num(left - calibration_w - 3)} {_num(base)}H{_num(left - calibration_w - 1.5)}"
            f"V{_num(top)}H{_num(left - 1.5)}V{_num(base)}H{_num(left)}"
        )
    out.append(
        f'<path class="ecg-calibration" d="{"".join(calibration)}"'
        ' fill="none" stroke="#000" stroke-width=".3"/>'
    )

    traces: list[str] = []
    labels: list[str] = []
    separators: list[str] = []
    for strip in strips:
        x0 = left + strip.start_s * speed_mm_s
        base = baseline_y(strip.row)
        first = round((start_s + strip.start_s) * rate)
        last = min(round((start_s + strip.start_s + strip.seconds) * rate), signal.sample_count)
        values = signal.lead(strip.lead)[first:last] if first < last else np.empty(0, np.float32)
        path = _trace_path(values, gain_mm_mv, bin_size)
        traces.append(
            f'<path data-lead={quoteattr(strip.lead)} data-row="{strip.row}"'
            f' data-start="{_num(start_s + strip.start_s)}" data-samples="{first}:{last}"'
            f' transform="translate({_num(x0)} {_num(base)}) scale({x_scale:.7g} {y_scale:g})"'
            f' d="{path}"/>'
        )
        css = ' class="derived"' if strip.lead in derived else ""
        label = strip.lead
        source = signal.source_leads[signal.leads.index(strip.lead)]
        if source and is_alias_label(source, strip.lead):
            label += f" ({source.strip()})"  # e.g. "II (MLII)": the reader sees what was recorded
        labels.append(
            f'<text x="{_num(x0 + 1)}" y="{_num(base - row_h * 0.6 + 5)}"{css}>'
            f"{escape(label)}</text>"
        )
        if strip.start_s > 0:
            separators.append(f"M{_num(x0)} {_num(base - 2.5)}v5")

    out.append(
        '<g class="ecg-traces" fill="none" stroke="#000" stroke-width="1.1"'
        ' stroke-linejoin="round" vector-effect="non-scaling-stroke">'
    )
    out.extend(t.replace("<path ", '<path vector-effect="non-scaling-stroke" ', 1) for t in traces)
    out.append("</g>")
    if separators:
        out.append(
            f'<path class="ecg-separators" d="{"".join(separators)}"'
            ' stroke="#000" stroke-width=".3"/>'
        )
    out.append('<g class="ecg-labels" font-family="sans-serif" font-size="3.5" fill="#000">')
    out.extend(labels)
    out.append("</g>")

    scale_text = (
        f"{_num(speed_mm_s)} mm/s · {_num(gain_mm_mv)} mm/mV · "
        f"{_seconds(start_s)}–{_seconds(min(start_s + window_s, signal.duration_s))} s"
        f" / {_seconds(signal.duration_s)} s"
        f" · {_num(rate)} Hz"
    )
    if derived:
        scale_text += " · " + _("derived: %(leads)s", leads=", ".join(signal.derived_leads))
    out.append(
        f'<text class="ecg-scale" x="{_num(left)}" y="{_num(height - 3.5)}"'
        f' font-family="sans-serif" font-size="3" fill="#333">{escape(scale_text)}</text>'
    )
    out.append("</svg>")
    return "".join(out)
