"""GE MUSE RestingECG XML: the rhythm waveform, and the 12SL measurements and statements.

MUSE stores eight leads (I, II, V1–V6) as Base64 little-endian int16 with a µV-per-bit
factor; III, aVR, aVL and aVF are computed from I and II like every stored pair of limb
leads. The "Rhythm" waveform is the recording; "Median" holds the cart's median beat.
"""

from __future__ import annotations

import base64
import binascii
from xml.etree.ElementTree import Element

import numpy as np
from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers._checks import check_sampling_rate, check_shape
from telemed.ecg.readers.device_values import plausible_device_values
from telemed.ecg.readers.xml_safe import child_text, find_all, find_child
from telemed.ecg.signal import DeviceReport, EcgLimits, EcgSignal, PatientIdentifiers, build_signal

SOURCE = "GE MUSE (12SL)"
_UNITS = {"MICROVOLTS": 1.0, "MILLIVOLTS": 1000.0, "VOLTS": 1_000_000.0}
# 12SL tag → our key; all in ms, bpm or degrees as MUSE writes them
_VALUES = {
    "VentricularRate": "heart_rate_bpm",
    "PRInterval": "pr_ms",
    "QRSDuration": "qrs_ms",
    "QTInterval": "qt_ms",
    "QTCorrected": "qtc_bazett_ms",
    "QTcFrederica": "qtc_fridericia_ms",
    "PAxis": "p_axis_deg",
    "RAxis": "qrs_axis_deg",
    "TAxis": "t_axis_deg",
}


def _number(name: str, text: str | None, what: str) -> float:
    try:
        return float(text or "")
    except ValueError:
        raise EcgFileError(
            name, _("GE MUSE XML: %(what)s %(value)r is not a number", what=what, value=text)
        ) from None


def _rate(name: str, holder: Element, limits: EcgLimits) -> float:
    base = _number(name, child_text(holder, "SampleBase"), "SampleBase")
    exponent = child_text(holder, "SampleExponent") or "0"
    return check_sampling_rate(name, base * 10 ** _number(name, exponent, "SampleExponent"), limits)


def _device_report(root: Element) -> DeviceReport:
    block = find_child(root, "RestingECGMeasurements")
    values: dict[str, float] = {}
    for tag, key in _VALUES.items():
        text = child_text(block, tag)
        try:
            values[key] = float(text) if text is not None else None
        except ValueError:
            continue
    # P duration: P onset/offset are sample numbers of the median beat at ECGSampleBase
    try:
        base = float(child_text(block, "ECGSampleBase") or "")
        onset = float(child_text(block, "POnset") or "")
        offset = float(child_text(block, "POffset") or "")
        values["p_ms"] = (offset - onset) * 1000.0 / base
    except (ValueError, ZeroDivisionError):
        pass
    if values.get("heart_rate_bpm"):
        values["rr_ms"] = 60000.0 / values["heart_rate_bpm"]
    statements = []
    for diagnosis in ("Diagnosis", "OriginalDiagnosis"):
        for statement in find_all(find_child(root, diagnosis), "DiagnosisStatement"):
            text = child_text(statement, "StmtText")
            if text:
                statements.append(text)
        if statements:
            break
    return DeviceReport(SOURCE, plausible_device_values(values), tuple(statements))


def _patient(root: Element) -> PatientIdentifiers:
    block = find_child(root, "PatientDemographics")
    names = [child_text(block, "PatientLastName"), child_text(block, "PatientFirstName")]
    return PatientIdentifiers(
        name=" ".join(n for n in names if n) or None,
        id=child_text(block, "PatientID"),
        birth_date=child_text(block, "DateofBirth"),
        sex=child_text(block, "Gender"),
    )


def _lead_samples(name: str, lead: Element) -> tuple[str, np.ndarray]:
    label = child_text(lead, "LeadID") or "?"
    data = find_child(lead, "WaveFormData")
    text = "".join((data.text or "").split()) if data is not None else ""
    if not text:
        raise EcgFileError(name, _("GE MUSE XML: lead %(lead)s has no samples", lead=label))
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EcgFileError(
            name, _("GE MUSE XML: lead %(lead)s is not valid Base64", lead=label)
        ) from None
    size = int(child_text(lead, "LeadSampleSize") or "2")
    if size != 2 or len(raw) % 2:
        raise EcgFileError(
            name,
            _("GE MUSE XML: lead %(lead)s is not 16-bit samples", lead=label),
        )
    units = (child_text(lead, "LeadAmplitudeUnits") or "MICROVOLTS").upper()
    if units not in _UNITS:
        raise EcgFileError(
            name,
            _("GE MUSE XML: lead %(lead)s has unit %(unit)s", lead=label, unit=units),
        )
    per_bit = _number(name, child_text(lead, "LeadAmplitudeUnitsPerBit") or "1", "units per bit")
    values = np.frombuffer(raw, dtype="<i2").astype(np.float32)
    return label, values * np.float32(per_bit * _UNITS[units])


def read_muse(name: str, root: Element, limits: EcgLimits) -> EcgSignal:
    waveforms = find_all(root, "Waveform")
    rhythm = next((w for w in waveforms if child_text(w, "WaveformType") == "Rhythm"), None)
    if rhythm is None:
        raise EcgFileError(
            name,
            _("GE MUSE XML: no Rhythm waveform (only a median beat cannot be read as a recording)"),
        )
    rate = _rate(name, rhythm, limits)
    leads = find_all(rhythm, "LeadData")
    check_shape(name, len(leads), 1, limits)
    channels = [_lead_samples(name, lead) for lead in leads]
    lengths = {len(values) for _label, values in channels}
    count = min(lengths)
    check_shape(name, len(channels), count, limits)
    notes = []
    if len(lengths) > 1:
        notes.append(_("leads differ in length; all cut to %(count)d samples", count=count))
    acquisition = {
        "stored_units": "µV",
        "high_pass_hz": _filter(child_text(rhythm, "HighPassFilter"), 0.01),
        "low_pass_hz": _filter(child_text(rhythm, "LowPassFilter"), 1.0),
        "mains_filter_hz": _filter(child_text(rhythm, "ACFilter"), 1.0),
    }
    return build_signal(
        [(label, values[:count]) for label, values in channels],
        rate,
        "ge_muse",
        patient=_patient(root),
        warnings=notes,
        acquisition={k: v for k, v in acquisition.items() if v is not None},
        device=_device_report(root),
    )


def _filter(text: str | None, unit: float) -> float | None:
    """MUSE writes the high-pass corner in hundredths of a hertz, the others in hertz."""
    try:
        return round(float(text or "") * unit, 3)
    except ValueError:
        return None
