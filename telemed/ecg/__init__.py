"""ECG recordings: read any accepted format, draw on ECG paper, measure.

The interface the rest of the service uses::

    signal = read_ecg([("100.hea", hea_path), ("100.dat", dat_path)])   # EcgSignal
    svg = render_ecg_svg(signal, start_s=0, speed_mm_s=25, gain_mm_mv=10)
    values = measure(signal)                                             # Measurements

Readers raise ``EcgFileError`` (a 422 ``InvalidInput`` naming the file and the reason)
and write nothing.
"""

from telemed.ecg.errors import EcgFileError
from telemed.ecg.measure import MACHINE_MEASUREMENT_LABEL, Measurements, measure
from telemed.ecg.readers.wfdb import signal_files_named
from telemed.ecg.reading import detect_ecg_format, read_ecg
from telemed.ecg.render import PAPER_GAINS, PAPER_SPEEDS, render_ecg_svg
from telemed.ecg.signal import (
    DEFAULT_LIMITS,
    DeviceReport,
    EcgLimits,
    EcgSignal,
    PatientIdentifiers,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MACHINE_MEASUREMENT_LABEL",
    "PAPER_GAINS",
    "PAPER_SPEEDS",
    "DeviceReport",
    "EcgFileError",
    "EcgLimits",
    "EcgSignal",
    "Measurements",
    "PatientIdentifiers",
    "detect_ecg_format",
    "measure",
    "read_ecg",
    "render_ecg_svg",
    "signal_files_named",
]
