"""Machine measurements of an ECG: rate, RR, PR, QRS, QT and QTc, by NeuroKit2.

They are suggestions for the reader, who confirms or corrects them; every result says
so. A value that cannot be measured, or comes out outside physiological bounds, is None:
nothing here raises on a real recording.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from flask_babel import gettext as _

from telemed.ecg.signal import EcgSignal

MACHINE_MEASUREMENT_LABEL = "machine measurement, to be confirmed by the reader"
METHOD = "neurokit2 {version}: ecg_clean (biosppy band-pass), ecg_peaks, ecg_delineate (dwt)"
PREFERRED_LEADS = ("II", "I", "V5", "V2", "III", "aVF")
DEFAULT_MAX_SECONDS = 60.0
MIN_SECONDS = 2.5
# Outside these a value is taken as a detection failure, not as a finding.
PLAUSIBLE_MS = {
    "rr": (200.0, 3000.0),
    "pr": (60.0, 400.0),
    "qrs": (40.0, 250.0),
    "qt": (200.0, 700.0),
}


@dataclass(frozen=True)
class Measurements:
    """Interval measurements in milliseconds; None where the machine could not tell."""

    heart_rate_bpm: int | None = None
    rr_ms: int | None = None
    pr_ms: int | None = None
    qrs_ms: int | None = None
    qt_ms: int | None = None
    qtc_bazett_ms: int | None = None
    qtc_fridericia_ms: int | None = None
    lead: str | None = None
    start_s: float = 0.0
    duration_s: float = 0.0
    beats: int = 0
    quality: str | None = None  # NeuroKit2's Zhao 2018 class: Excellent, Barely acceptable, ...
    is_machine_measurement: bool = True
    method: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        """What the page shows beside the values."""
        return _("machine measurement, to be confirmed by the reader")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        data["label"] = self.label
        return data


def _choose_lead(signal: EcgSignal, lead: str | None) -> str | None:
    if lead is not None:
        return lead if signal.has_lead(lead) else None
    for name in PREFERRED_LEADS:
        if signal.has_lead(name):
            return name
    return signal.leads[0] if signal.leads else None


def _median_interval(waves: dict, start: str, end: str, rate: float) -> float | None:
    if start not in waves or end not in waves:
        return None
    first = np.asarray(waves[start], dtype=float)
    last = np.asarray(waves[end], dtype=float)
    count = min(len(first), len(last))
    values = (last[:count] - first[:count]) / rate * 1000.0
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.median(values)) if len(values) else None


def _plausible(kind: str, value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    low, high = PLAUSIBLE_MS[kind]
    return value if low <= value <= high else None


def _whole(value: float | None) -> int | None:
    return None if value is None else round(value)


def measure(
    signal: EcgSignal,
    *,
    lead: str | None = None,
    start_s: float = 0.0,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Measurements:
    """Measure one lead (II when present) over ``max_seconds`` from ``start_s``.

    Heart rate is 60 000 / mean RR; PR, QRS and QT are medians over the beats that could
    be delineated (PR: P onset to QRS onset; QRS: onset to offset; QT: QRS onset to T
    offset); QTc by Bazett (QT / √RR) and Fridericia (QT / ∛RR), RR in seconds.
    """
    import neurokit2 as nk  # imported here: it takes seconds and is only needed here

    method = METHOD.format(version=nk.__version__)
    chosen = _choose_lead(signal, lead)
    rate = signal.sampling_rate
    first = max(0, min(signal.sample_count, round(start_s * rate)))
    last = min(signal.sample_count, first + round(max_seconds * rate))
    window = (last - first) / rate
    base = {
        "lead": chosen,
        "start_s": first / rate,
        "duration_s": round(window, 3),
        "method": method,
    }
    if chosen is None:
        return Measurements(**base, notes=(_("no lead to measure"),))
    if window < MIN_SECONDS:
        return Measurements(
            **base,
            notes=(_("the recording is too short to measure (under %(s)g s)", s=MIN_SECONDS),),
        )
    values = signal.lead(chosen)[first:last].astype(np.float64) / 1000.0  # NeuroKit works in mV
    if not np.isfinite(values).all() or np.ptp(values) < 0.05:
        return Measurements(**base, notes=(_("the lead is flat or invalid"),))

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cleaned = nk.ecg_clean(values, sampling_rate=rate, method="biosppy")
            _signals, info = nk.ecg_peaks(cleaned, sampling_rate=rate)
            peaks = np.asarray(info["ECG_R_Peaks"], dtype=int)
        except Exception as error:  # a library failure is "not measured", never a 500
            return Measurements(
                **base, notes=(_("R waves not found (%(e)s)", e=type(error).__name__),)
            )
        waves: dict = {}
        quality = None
        if len(peaks) >= 3:
            try:
                quality = str(
                    nk.ecg_quality(cleaned, rpeaks=peaks, sampling_rate=rate, method="zhao2018")
                )
            except Exception:
                quality = "Unacceptable"
        if quality == "Unacceptable":
            peaks = peaks[:0]
        elif len(peaks) >= 3:
            try:
                _delineated, waves = nk.ecg_delineate(
                    cleaned, peaks, sampling_rate=rate, method="dwt"
                )
            except Exception as error:
                notes.append(_("waves not delineated (%(e)s)", e=type(error).__name__))
    notes.extend(sorted({str(w.message)[:160] for w in caught}))

    if quality == "Unacceptable":
        return Measurements(
            **base, quality=quality, notes=(*notes, _("signal quality too poor to measure"))
        )
    if len(peaks) < 3:
        return Measurements(**base, beats=len(peaks), notes=(*notes, _("fewer than 3 beats found")))
    rr = _plausible("rr", float(np.mean(np.diff(peaks))) / rate * 1000.0)
    pr = _plausible("pr", _median_interval(waves, "ECG_P_Onsets", "ECG_R_Onsets", rate))
    qrs = _plausible("qrs", _median_interval(waves, "ECG_R_Onsets", "ECG_R_Offsets", rate))
    qt = _plausible("qt", _median_interval(waves, "ECG_R_Onsets", "ECG_T_Offsets", rate))
    if qt is not None and qrs is not None and qt <= qrs:
        qt = None
    bazett = fridericia = None
    if qt is not None and rr is not None:
        rr_s = rr / 1000.0
        bazett, fridericia = qt / math.sqrt(rr_s), qt / rr_s ** (1 / 3)
    return Measurements(
        heart_rate_bpm=_whole(60000.0 / rr) if rr else None,
        rr_ms=_whole(rr),
        pr_ms=_whole(pr),
        qrs_ms=_whole(qrs),
        qt_ms=_whole(qt),
        qtc_bazett_ms=_whole(bazett),
        qtc_fridericia_ms=_whole(fridericia),
        beats=len(peaks),
        quality=quality,
        notes=tuple(notes),
        **base,
    )
