"""ECG figures: SVG render of a 10 s 12-lead, parse time per format, measurement time.

Each figure is printed beside a floor doing the least work on the same data, and the
ratio between them; nothing is asserted. Run: .venv/bin/python bench/ecg_render.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telemed.ecg import measure, read_ecg, render_ecg_svg

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
WFDB = [DATA / "ecg" / "100.hea", DATA / "ecg" / "100.dat"]
AECG = DATA / "ecg" / "subject1_0.xml"
DICOM = DATA / "dicom" / "waveform_ecg.dcm"


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds over ``repeats`` runs after one warm-up."""
    action()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        runs.append((time.perf_counter() - start) * 1000)
    runs.sort()
    return statistics.median(runs), runs[min(len(runs) - 1, round(0.95 * (len(runs) - 1)))]


def plain_polylines(samples: np.ndarray, rate: float) -> str:
    """The floor for rendering: every sample as x,y text in one path per lead, no grid,
    no layout, no reduction."""
    x = np.arange(samples.shape[1]) * (25.0 / rate)
    parts = []
    for lead in samples:
        points = np.column_stack([x, lead / 100.0]).round(2).ravel().tolist()
        parts.append('<path d="M' + " ".join(map(str, points)) + '"/>')
    return "<svg>" + "".join(parts) + "</svg>"


def row(label: str, figure: tuple[float, float], floor: tuple[float, float], floor_label: str):
    ratio = figure[0] / floor[0] if floor[0] else float("inf")
    print(
        f"{label:<34} p50 {figure[0]:8.2f} ms  p95 {figure[1]:8.2f} ms   "
        f"{floor_label:<30} p50 {floor[0]:8.2f} ms  p95 {floor[1]:8.2f} ms   x{ratio:6.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    n = args.repeats

    twelve = read_ecg([DICOM])  # 12 leads × 10 s at 1000 Hz
    print(
        f"12-lead: {len(twelve.leads)} leads, {twelve.sample_count} samples at "
        f"{twelve.sampling_rate:g} Hz; SVG {len(render_ecg_svg(twelve)) / 1024:.0f} KiB"
    )
    print("-- render (10 s 12-lead, 1000 Hz)")
    row(
        "render_ecg_svg 25 mm/s 10 mm/mV",
        timed(lambda: render_ecg_svg(twelve), n),
        timed(lambda: plain_polylines(twelve.samples, twelve.sampling_rate), n),
        "floor: all samples as text",
    )
    row(
        "render_ecg_svg 50 mm/s 20 mm/mV",
        timed(lambda: render_ecg_svg(twelve, speed_mm_s=50, gain_mm_mv=20), n),
        timed(lambda: twelve.samples.tobytes().hex(), n),
        "floor: hex dump of the samples",
    )
    aecg = read_ecg([AECG])
    row(
        "render_ecg_svg (aECG, 500 Hz)",
        timed(lambda: render_ecg_svg(aecg), n),
        timed(lambda: plain_polylines(aecg.samples, aecg.sampling_rate), n),
        "floor: all samples as text",
    )

    print("-- parse")
    row(
        "read_ecg DICOM waveform (291 KB)",
        timed(lambda: read_ecg([DICOM]), n),
        timed(lambda: pydicom.dcmread(DICOM).waveform_array(0), n),
        "floor: pydicom waveform_array",
    )
    xml_text = AECG.read_text()
    row(
        "read_ecg HL7 aECG (455 KB)",
        timed(lambda: read_ecg([AECG]), n),
        timed(lambda: [np.array(t.split()) for t in xml_text.split("<digits>")[1:13]], n),
        "floor: split the digit texts",
    )
    row(
        "read_ecg WFDB 212 (30 min, 1.9 MB)",
        timed(lambda: read_ecg(WFDB), max(5, n // 5)),
        timed(lambda: np.fromfile(WFDB[1], dtype=np.uint8), max(5, n // 5)),
        "floor: np.fromfile of the .dat",
    )
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "ecg.csv"
        header = ",".join(twelve.leads)
        body = "\n".join(",".join(f"{v:g}" for v in frame) for frame in twelve.samples.T)
        csv_path.write_text(f"# sampling_rate=1000\n{header}\n{body}\n")
        row(
            "read_ecg CSV 12 × 10000 (1000 Hz)",
            timed(lambda: read_ecg([csv_path]), max(5, n // 5)),
            timed(lambda: csv_path.read_text().split(), max(5, n // 5)),
            "floor: read and split the text",
        )

    print("-- measure (lead II)")
    import neurokit2 as nk

    def floor_peaks(signal) -> None:
        nk.ecg_peaks(signal.lead("II").astype(float) / 1000, sampling_rate=signal.sampling_rate)

    row(
        "measure 12-lead 10 s at 1000 Hz",
        timed(lambda: measure(twelve), max(5, n // 5)),
        timed(lambda: floor_peaks(twelve), max(5, n // 5)),
        "floor: R peaks only",
    )
    holter = read_ecg(WFDB)
    row(
        "measure record 100, 60 s at 360 Hz",
        timed(lambda: measure(holter), max(5, n // 10)),
        timed(lambda: floor_peaks(holter), max(5, n // 10)),
        "floor: R peaks only (30 min)",
    )


if __name__ == "__main__":
    main()
