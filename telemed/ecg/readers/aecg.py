"""HL7 v3 Annotated ECG (aECG) XML, parsed with defusedxml.

A DTD, an entity declaration or an external reference is refused outright: none has a
place in an aECG, and each is how XML bombs and file disclosure work.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree
import numpy as np
from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers._checks import check_sampling_rate, check_shape, checked_size
from telemed.ecg.signal import EcgLimits, EcgSignal, PatientIdentifiers, build_signal

NS = "{urn:hl7-org:v3}"
_TIME_UNITS = {"s": 1.0, "ms": 0.001, "us": 1e-6}
_VOLT_UNITS = {"uv": 1.0, "µv": 1.0, "mv": 1000.0, "v": 1_000_000.0, "nv": 0.001}


def _parse_xml(name: str, path: Path) -> Element:
    try:
        return defusedxml.ElementTree.parse(str(path), forbid_dtd=True).getroot()
    except defusedxml.DTDForbidden:
        reason = _("XML document type declarations (DTD) are not accepted")
    except defusedxml.EntitiesForbidden:
        reason = _("XML entity declarations are not accepted")
    except defusedxml.ExternalReferenceForbidden:
        reason = _("XML external references are not accepted")
    except defusedxml.DefusedXmlException as error:
        reason = _("unsafe XML refused: %(what)s", what=type(error).__name__)
    except ParseError as error:
        reason = _("not well-formed XML (%(detail)s)", detail=str(error))
    except OSError:
        reason = _("the file is missing or unreadable")
    raise EcgFileError(name, reason)


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


def read_aecg(name: str, path: Path, limits: EcgLimits) -> EcgSignal:
    size = checked_size(name, path, limits)
    if size > limits.max_xml_bytes:
        raise EcgFileError(
            name,
            _(
                "an aECG of %(size)d bytes is over the limit of %(limit)d bytes",
                size=size,
                limit=limits.max_xml_bytes,
            ),
        )
    root = _parse_xml(name, path)
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
        return build_signal(channels, rate, "hl7_aecg", patient=_patient(root), warnings=notes)
    raise EcgFileError(name, _("aECG: the rhythm series holds no lead sequences"))
