"""HL7 v3 Annotated ECG (aECG) XML, parsed with defusedxml (``xml_safe``).

An entity declaration or an external reference is refused outright: each is how XML
bombs and file disclosure work. The first annotation set's global values (MDC interval,
angle and rate codes) and rhythm statements are the device's report.
"""

from __future__ import annotations

import warnings
from xml.etree.ElementTree import Element

import numpy as np
from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers._checks import check_sampling_rate, check_shape
from telemed.ecg.readers.device_values import plausible_device_values
from telemed.ecg.signal import DeviceReport, EcgLimits, EcgSignal, PatientIdentifiers, build_signal

NS = "{urn:hl7-org:v3}"
_TIME_UNITS = {"s": 1.0, "ms": 0.001, "us": 1e-6}
_VOLT_UNITS = {"uv": 1.0, "µv": 1.0, "mv": 1000.0, "v": 1_000_000.0, "nv": 0.001}


def _code(element: Element | None) -> str:
    if element is None:
        return ""
    code = element.find(f"{NS}code")
    return (code.get("code") or "") if code is not None else ""


def _quantity(name: str, element: Element | None, what: str, units: dict[str, float]) -> float:
    if element is None:
        raise EcgFileError(name, _("aECG: %(what)s is missing", what=what))
    unit = (element.get("unit") or "").lower()
    if unit not in units:
        raise EcgFileError(name, _("aECG: %(what)s has unit %(unit)r", what=what, unit=unit))
    try:
        value = float(element.get("value") or "")
    except ValueError:
        raise EcgFileError(name, _("aECG: %(what)s is not a number", what=what)) from None
    return value * units[unit]


def _digits(name: str, lead: str, element: Element | None) -> np.ndarray:
    text = element.text if element is not None else None
    if not text or not text.strip():
        raise EcgFileError(name, _("aECG: lead %(lead)s has no samples", lead=lead))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = np.fromstring(text, dtype=np.float64, sep=" ")
    except (ValueError, DeprecationWarning):
        raise EcgFileError(
            name, _("aECG: lead %(lead)s has a sample that is not a number", lead=lead)
        ) from None
    if not np.isfinite(values).all():
        raise EcgFileError(
            name, _("aECG: lead %(lead)s has a sample that is not a number", lead=lead)
        )
    return values


def _patient(root: Element) -> PatientIdentifiers:
    subject = next(root.iter(f"{NS}trialSubject"), None)
    if subject is None:
        return PatientIdentifiers()
    identifier = subject.find(f"{NS}id")
    person = subject.find(f"{NS}subjectDemographicPerson")
    name = sex = birth = None
    if person is not None:
        name_el = person.find(f"{NS}name")
        name = " ".join("".join(name_el.itertext()).split()) if name_el is not None else None
        sex_el = person.find(f"{NS}administrativeGenderCode")
        sex = sex_el.get("code") if sex_el is not None else None
        birth_el = person.find(f"{NS}birthTime")
        birth = birth_el.get("value") if birth_el is not None else None
    return PatientIdentifiers(
        name=name or None,
        id=identifier.get("extension") if identifier is not None else None,
        birth_date=birth,
        sex=sex,
    )


_ANNOTATION_VALUES = {
    "MDC_ECG_HEART_RATE": "heart_rate_bpm",
    "MDC_ECG_TIME_PD_RR": "rr_ms",
    "MDC_ECG_TIME_PD_P": "p_ms",
    "MDC_ECG_TIME_PD_PR": "pr_ms",
    "MDC_ECG_TIME_PD_QRS": "qrs_ms",
    "MDC_ECG_TIME_PD_QT": "qt_ms",
    "MDC_ECG_TIME_PD_QTc": "qtc_ms",
    "MDC_ECG_TIME_PD_QTcB": "qtc_bazett_ms",
    "MDC_ECG_TIME_PD_QTcF": "qtc_fridericia_ms",
    "MDC_ECG_ANGLE_P_FRONT": "p_axis_deg",
    "MDC_ECG_ANGLE_QRS_FRONT": "qrs_axis_deg",
    "MDC_ECG_ANGLE_T_FRONT": "t_axis_deg",
}


def _device_report(root: Element) -> DeviceReport | None:
    """The first annotation set's global values (first of each code) and statements."""
    annotation_set = next(root.iter(f"{NS}annotationSet"), None)
    if annotation_set is None:
        return None
    values: dict[str, float | None] = {}
    statements: list[str] = []
    for annotation in annotation_set.iter(f"{NS}annotation"):
        code = _code(annotation)
        value = annotation.find(f"{NS}value")
        if value is None:
            continue
        key = _ANNOTATION_VALUES.get(code)
        if key and key not in values:
            try:
                values[key] = float(value.get("value") or "")
            except ValueError:
                continue
        elif code in ("MDC_ECG_RHY", "MDC_ECG_INTERPRETATION_STATEMENT"):
            text = value.get("displayName") or (value.text or "").strip()
            if text and text not in statements:
                statements.append(text)
    return DeviceReport("HL7 aECG annotations", plausible_device_values(values), tuple(statements))


def read_aecg(name: str, root: Element, limits: EcgLimits) -> EcgSignal:
    if root.tag != f"{NS}AnnotatedECG":
        raise EcgFileError(name, _("not an HL7 AnnotatedECG document"))

    series_list = [c.find(f"{NS}series") for c in root.findall(f"{NS}component")]
    series_list = [s for s in series_list if s is not None]
    if not series_list:
        raise EcgFileError(name, _("aECG: no waveform series"))
    # The rhythm series is the recording; derived series hold median beats.
    series = next((s for s in series_list if _code(s) == "RHYTHM"), series_list[0])

    for holder in series.findall(f"{NS}component"):
        sequence_set = holder.find(f"{NS}sequenceSet")
        if sequence_set is None:
            continue
        increment = None
        channels: list[tuple[str, np.ndarray]] = []
        for component in sequence_set.findall(f"{NS}component"):
            sequence = component.find(f"{NS}sequence")
            if sequence is None:
                continue
            code = _code(sequence)
            value = sequence.find(f"{NS}value")
            if code.startswith("TIME_"):
                step = value.find(f"{NS}increment") if value is not None else None
                increment = _quantity(name, step, "time increment", _TIME_UNITS)
            elif code.upper().startswith("MDC_ECG_LEAD_") and value is not None:
                origin_el = value.find(f"{NS}origin")
                origin = (
                    _quantity(name, origin_el, "origin", _VOLT_UNITS)
                    if origin_el is not None
                    else 0.0
                )
                scale = _quantity(name, value.find(f"{NS}scale"), "scale", _VOLT_UNITS)
                digits = _digits(name, code, value.find(f"{NS}digits"))
                channels.append((code, origin + scale * digits))
        if not channels:
            continue
        if increment is None or increment <= 0:
            raise EcgFileError(name, _("aECG: the sequence set has no usable time increment"))
        rate = check_sampling_rate(name, round(1.0 / increment, 6), limits)
        lengths = {len(values) for _label, values in channels}
        count = min(lengths)
        check_shape(name, len(channels), count, limits)
        notes = []
        if len(lengths) > 1:
            notes.append(_("leads differ in length; all cut to %(count)d samples", count=count))
        channels = [(label, values[:count]) for label, values in channels]
        return build_signal(
            channels,
            rate,
            "hl7_aecg",
            patient=_patient(root),
            warnings=notes,
            acquisition={"stored_units": "µV"},
            device=_device_report(root),
        )
    raise EcgFileError(name, _("aECG: the rhythm series holds no lead sequences"))
