"""Machine measurements of an ECG: global intervals, QTc and axes from the median beat.

R peaks by NeuroKit2 on one lead (II first); everything else from the median beat of
all leads together (``median_beat``), as the CSE study and IEC 60601-2-25 define global
measurements. They are suggestions for the reader, who confirms, changes or strikes
each; every result says so. A value outside physiological bounds is withheld (None, with
a note); one that differs between the odd and the even beats by more than the
stability limit is listed in ``uncertain``. Nothing here raises on a real recording.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from flask_babel import gettext as _

from telemed.ecg import median_beat
from telemed.ecg.signal import EcgSignal

MACHINE_MEASUREMENT_LABEL = "machine measurement, to be confirmed by the reader"
METHOD = (
    "median beat of all leads (R peaks: neurokit2 {version} ecg_peaks); global onsets and "
    "offsets by spatial velocity, T end by tangent (latest agreeing lead); "
    "QTc by Bazett and by Fridericia"
)
PREFERRED_LEADS = ("II", "I", "V5", "V2", "III", "aVF")
DEFAULT_MAX_SECONDS = 60.0
MIN_SECONDS = 2.5
# Outside these a value is taken as a detection failure, not as a finding.
PLAUSIBLE_MS = {
    "rr": (200.0, 3000.0),
    "p": (40.0, 200.0),
    "pr": (60.0, 400.0),
    "qrs": (40.0, 250.0),
    "qt": (200.0, 700.0),
}
# Odd-beat and even-beat median beats disagreeing by more than this: "uncertain".
STABILITY_MS = {"p": 20.0, "pr": 20.0, "qrs": 12.0, "qt": 30.0}


@dataclass(frozen=True)
class Measurements:
    """Interval measurements in milliseconds; None where the machine could not tell."""

    heart_rate_bpm: int | None = None
    rr_ms: int | None = None
    p_ms: int | None = None
    pr_ms: int | None = None
    qrs_ms: int | None = None
    qt_ms: int | None = None
    qtc_bazett_ms: int | None = None
    qtc_fridericia_ms: int | None = None
    p_axis_deg: int | None = None
    qrs_axis_deg: int | None = None
    t_axis_deg: int | None = None
    lead: str | None = None  # the lead the R peaks were found on
    start_s: float = 0.0
    duration_s: float = 0.0
    beats: int = 0  # R peaks found
    median_beats: int = 0  # beats of regular RR in the median beat
    quality: str | None = None  # good, fair, poor (beat-to-beat agreement; see measure)
    uncertain: tuple[str, ...] = ()  # keys of values unstable across beats
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
        data["uncertain"] = list(self.uncertain)
        data["label"] = self.label
        return data


def _choose_lead(signal: EcgSignal, lead: str | None) -> str | None:
    if lead is not None:
        return lead if signal.has_lead(lead) else None
    for name in PREFERRED_LEADS:
        if signal.has_lead(name):
            return name
    return signal.leads[0] if signal.leads else None


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
    """Measure ``max_seconds`` from ``start_s``: R peaks on ``lead`` (II when present),
    intervals and axes on the median beat of every lead.

    Heart rate is 60 000 / median RR. PR: P onset to QRS onset; QRS: onset to offset;
    QT: QRS onset to T end; P: P onset to offset; QTc by Bazett (QT / √RR) and by
    Fridericia (QT / ∛RR), RR in seconds. Quality: "good" when at least 6 beats and 90 %
    of them match the median beat's QRS (correlation ≥ 0.9), "fair" at 70 %, else
    "poor", when every value is marked uncertain.
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
    notes.extend(sorted({str(w.message)[:160] for w in caught}))
    if len(peaks) < 3:
        return Measurements(**base, beats=len(peaks), notes=(*notes, _("fewer than 3 beats found")))

    rr_all = np.diff(peaks) / rate * 1000.0
    rr = _plausible("rr", float(np.median(rr_all)))
    if rr is None:
        return Measurements(**base, beats=len(peaks), notes=(*notes, _("no plausible RR interval")))
    # Regular beats only: RR before and after within 20 % of the median.
    regular = [
        peaks[i]
        for i in range(1, len(peaks) - 1)
        if abs(rr_all[i - 1] - rr) <= 0.2 * rr and abs(rr_all[i] - rr) <= 0.2 * rr
    ]
    usable = [
        name
        for index, name in enumerate(signal.leads)
        if np.isfinite(signal.samples[index, first:last]).all()
    ]
    data = np.stack([signal.lead(name)[first:last].astype(np.float64) for name in usable])
    filtered = median_beat.band_pass(data, rate)
    filtered_st = median_beat.band_pass(data, rate, low=median_beat.ST_LOW_CUT_HZ)
    pre = round(min(0.40, 0.5 * rr / 1000.0) * rate)
    post = round(min(0.75, rr / 1000.0 - 0.08) * rate)
    aligned = [p for p in regular if p - pre >= 0 and p + post <= filtered.shape[1]]
    if len(aligned) < 3:  # no rhythm to speak of (or noise): nothing is shown as measured
        return Measurements(
            **base,
            beats=len(peaks),
            quality="poor",
            notes=(*notes, _("fewer than 3 regular beats: no median beat")),
        )
    beat, beats = median_beat.median_beat(filtered, np.asarray(aligned), pre, post)
    st_beat, _st_beats = median_beat.median_beat(filtered_st, np.asarray(aligned), pre, post)
    quality = _quality(beat, beats, pre, rate)
    found = median_beat.delineate(beat, rate, pre, st_beat)
    if found is None:
        return Measurements(
            **base,
            rr_ms=round(rr),
            heart_rate_bpm=round(60000.0 / rr),
            beats=len(peaks),
            median_beats=len(aligned),
            quality=quality,
            notes=(*notes, _("no QRS complex found in the median beat")),
        )
    intervals = _intervals(found, rate)
    uncertain = set()
    if len(aligned) >= 6:
        found_halves = [
            median_beat.delineate(
                median_beat.median_beat(filtered, np.asarray(aligned[k::2]), pre, post)[0],
                rate,
                pre,
                median_beat.median_beat(filtered_st, np.asarray(aligned[k::2]), pre, post)[0],
            )
            for k in (0, 1)
        ]
        if all(found_halves):
            odd, even = (_intervals(f, rate) for f in found_halves)
            for key, limit in STABILITY_MS.items():
                a, b = odd.get(key), even.get(key)
                if intervals.get(key) is not None and (
                    a is None or b is None or abs(a - b) > limit
                ):
                    uncertain.add(key)
    if quality == "poor":
        uncertain |= {key for key, value in intervals.items() if value is not None}

    checked: dict[str, float | None] = {}
    for key, value in intervals.items():
        kept = _plausible(key, value)
        if value is not None and kept is None:
            notes.append(
                _("%(value)s withheld: implausible (%(ms)d ms)", value=key.upper(), ms=round(value))
            )
        checked[key] = kept
    if found.p_on is None:
        notes.append(_("no P wave found: P and PR not measured"))
    if found.t_end is None:
        notes.append(_("no T wave end found: QT not measured"))
    qt = checked.get("qt")
    if qt is not None and checked.get("qrs") is not None and qt <= checked["qrs"]:
        qt = checked["qt"] = None
    bazett = fridericia = None
    if qt is not None:
        rr_s = rr / 1000.0
        bazett, fridericia = qt / math.sqrt(rr_s), qt / rr_s ** (1 / 3)
    axes = _axes(beat, usable, found)
    return Measurements(
        heart_rate_bpm=_whole(60000.0 / rr),
        rr_ms=_whole(rr),
        p_ms=_whole(checked.get("p")),
        pr_ms=_whole(checked.get("pr")),
        qrs_ms=_whole(checked.get("qrs")),
        qt_ms=_whole(qt),
        qtc_bazett_ms=_whole(bazett),
        qtc_fridericia_ms=_whole(fridericia),
        p_axis_deg=axes.get("p"),
        qrs_axis_deg=axes.get("qrs"),
        t_axis_deg=axes.get("t"),
        beats=len(peaks),
        median_beats=len(aligned),
        quality=quality,
        uncertain=tuple(sorted(f"{key}_ms" for key in uncertain if checked.get(key) is not None)),
        notes=tuple(notes),
        **base,
    )


def _intervals(found: median_beat.Fiducials, rate: float) -> dict[str, float | None]:
    def span(first: int | None, last: int | None) -> float | None:
        if first is None or last is None:
            return None
        return (last - first) / rate * 1000.0

    return {
        "p": span(found.p_on, found.p_off),
        "pr": span(found.p_on, found.qrs_on),
        "qrs": span(found.qrs_on, found.qrs_off),
        "qt": span(found.qrs_on, found.t_end),
    }


def _quality(beat: np.ndarray, beats: np.ndarray, r_index: int, rate: float) -> str:
    """How well single beats match the median beat around the QRS (strongest lead)."""
    lead = int(np.argmax(np.ptp(beat, axis=1)))
    half = max(2, round(0.06 * rate))
    window = slice(max(0, r_index - half), r_index + half)
    reference = beat[lead, window]
    matching = 0
    for single in beats[:, lead, window]:
        if (
            np.std(single) > 0
            and np.std(reference) > 0
            and float(np.corrcoef(single, reference)[0, 1]) >= 0.9
        ):
            matching += 1
    share = matching / len(beats)
    if len(beats) >= 6 and share >= 0.9:
        return "good"
    return "fair" if share >= 0.7 else "poor"


def _axes(beat: np.ndarray, leads: list[str], found: median_beat.Fiducials) -> dict[str, int]:
    if "I" not in leads or "aVF" not in leads:
        return {}
    lead_i, lead_avf = beat[leads.index("I")], beat[leads.index("aVF")]
    level_at = max(0, found.qrs_on - 2)
    lead_i = lead_i - lead_i[level_at]
    lead_avf = lead_avf - lead_avf[level_at]
    spans = {"qrs": (found.qrs_on, found.qrs_off)}
    if found.p_on is not None and found.p_off is not None:
        spans["p"] = (found.p_on, found.p_off)
    if found.t_end is not None:
        spans["t"] = (found.qrs_off, found.t_end)
    axes = {}
    for key, (start, end) in spans.items():
        axis = median_beat.frontal_axis(lead_i[start:end], lead_avf[start:end])
        if axis is not None:
            axes[key] = axis
    return axes
