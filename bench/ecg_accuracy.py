"""ECG measurement accuracy against the devices' own measurements.

Runs ``telemed.ecg.measure`` on every file in ``../shared/samples/ecg`` that carries the
recording cart's global measurements (GE MUSE 12SL, Philips, HL7 aECG annotations, SCP
files with section 7 or 10) and prints, per interval, each difference (ours − device),
their mean and standard deviation, beside the tolerances IEC 60601-2-25 sets for the CSE
database (mean / SD: PR ±10 / 10 ms, QRS ±6 / 10 ms, QT ±12 / 30 ms). The device is a
reference, not the truth: the standard's figures are against the CSE referees, whose
database is not public. Nothing is asserted.

Run: .venv/bin/python bench/ecg_accuracy.py [--shared PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telemed.ecg import EcgFileError, measure, read_ecg  # noqa: E402

# interval → (mean tolerance, SD tolerance) in ms, IEC 60601-2-25:2011 201.12.4.4.2
TOLERANCES = {"pr_ms": (10.0, 10.0), "qrs_ms": (6.0, 10.0), "qt_ms": (12.0, 30.0)}
OTHER = ("p_ms", "heart_rate_bpm", "p_axis_deg", "qrs_axis_deg", "t_axis_deg")


def shared_folder(given: str | None) -> Path:
    if given:
        return Path(given)
    for base in (ROOT.parent, ROOT.parent.parent):
        candidate = base / "shared" / "samples" / "ecg"
        if candidate.is_dir():
            return candidate
    raise SystemExit("shared/samples/ecg not found beside the repository; pass --shared")


def recordings(folder: Path):
    for sub in ("ge_muse_xml", "philips_sierra_xml", "hl7_aecg", "scp_ecg"):
        for path in sorted((folder / sub).glob("*")):
            if path.is_file():
                yield path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", help="the shared/samples/ecg folder")
    args = parser.parse_args()
    folder = shared_folder(args.shared)

    differences: dict[str, list[float]] = {key: [] for key in (*TOLERANCES, *OTHER)}
    print(f"{'file':42} {'source':28} " + " ".join(f"{k[:-3]:>14}" for k in TOLERANCES))
    for path in recordings(folder):
        try:
            signal = read_ecg([path])
        except EcgFileError as error:
            print(f"{path.name:42} refused: {error.reason}")
            continue
        if signal.device is None or not signal.device.values:
            print(f"{path.name:42} no device measurements in the file: skipped")
            continue
        ours = measure(signal)
        device = signal.device.values
        cells = []
        for key in (*TOLERANCES, *OTHER):
            mine, theirs = getattr(ours, key), device.get(key)
            if mine is not None and theirs is not None:
                difference = mine - theirs
                if key.endswith("axis_deg"):
                    difference = (difference + 180) % 360 - 180
                differences[key].append(difference)
            if key in TOLERANCES:
                shown = "—" if mine is None else mine
                gap = "" if mine is None or theirs is None else f"{mine - theirs:+d}"
                cells.append(f"{shown:>5}/{theirs or '—':<4}{gap:>5}")
        flags = f" quality {ours.quality}"
        if ours.uncertain:
            flags += f", uncertain {', '.join(ours.uncertain)}"
        print(f"{path.name:42} {signal.device.source[:28]:28} " + " ".join(cells) + flags)

    print()
    print(f"{'interval':16} {'n':>3} {'mean':>8} {'SD':>8} {'tolerance':>12}  within")
    for key in (*TOLERANCES, *OTHER):
        values = differences[key]
        if not values:
            print(f"{key:16} {0:>3}      —")
            continue
        mean = statistics.fmean(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        if key in TOLERANCES:
            mean_limit, sd_limit = TOLERANCES[key]
            verdict = "yes" if abs(mean) <= mean_limit and sd <= sd_limit else "NO"
            limit = f"±{mean_limit:g} / {sd_limit:g}"
        else:
            verdict, limit = "", "(none set)"
        print(f"{key:16} {len(values):>3} {mean:>+8.1f} {sd:>8.1f} {limit:>12}  {verdict}")


if __name__ == "__main__":
    main()
