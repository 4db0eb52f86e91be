"""Philips SierraECG / PhilipsECG XML 1.03–1.04.02 (PageWriter, TraceMaster exports).

The XML is parsed here (defusedxml, like every ECG XML); the XLI-compressed waveforms
are unpacked by ``sierraecg.xli`` (MIT, the format's maintained open decoder). Philips
stores III, aVR, aVL and aVF of an XLI record as residuals of I and II, rebuilt here as
``sierraecg.read_file`` does. UTF-16 files are read by the XML parser from their BOM.
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
from telemed.ecg.readers.xml_safe import child_text, find_all, find_child, find_deep, local_name
from telemed.ecg.signal import DeviceReport, EcgLimits, EcgSignal, PatientIdentifiers, build_signal

SOURCE = "Philips (DXL / PageWriter)"
VERSIONS = ("1.03", "1.04", "1.04.01", "1.04.02")
_VALUES = {
    "heartrate": "heart_rate_bpm",
    "rrint": "rr_ms",
    "pdur": "p_ms",
    "print": "pr_ms",
    "qrsdur": "qrs_ms",
    "qtint": "qt_ms",
    "qtcb": "qtc_bazett_ms",
    "qtcf": "qtc_fridericia_ms",
    "pfrontaxis": "p_axis_deg",
    "qrsfrontaxis": "qrs_axis_deg",
    "tfrontaxis": "t_axis_deg",
}
_STANDARD_12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _int(name: str, text: str | None, what: str) -> int:
    try:
        return int(float(text or ""))
    except ValueError:
        raise EcgFileError(
            name, _("Philips XML: %(what)s %(value)r is not a number", what=what, value=text)
        ) from None


def _decompress(name: str, raw: bytes, labels: list[str]) -> list[np.ndarray]:
    from sierraecg.xli import xli_decode  # pure Python; imported only for XLI files

    try:
        leads = xli_decode(raw, labels)
    except Exception:  # the decoder's own failures on damaged data: IndexError, ValueError...
        raise EcgFileError(
            name, _("Philips XML: the XLI-compressed waveforms are damaged")
        ) from None
    if len(leads) < len(labels):
        raise EcgFileError(
            name,
            _(
                "Philips XML: %(found)d compressed leads where %(count)d are declared",
                found=len(leads),
                count=len(labels),
            ),
        )
    data = [np.asarray(lead, dtype=np.int32) for lead in leads[: len(labels)]]
    if list(labels[:6]) == list(_STANDARD_12[:6]):
        # XLI keeps III, aVR, aVL, aVF as residuals of what I and II predict
        lead_i, lead_ii, lead_iii = data[0], data[1], data[2]
        count = min(len(lead_i), len(lead_ii), len(lead_iii), *(len(d) for d in data[3:6]))
        lead_i, lead_ii = lead_i[:count], lead_ii[:count]
        lead_iii = lead_ii - lead_i - lead_iii[:count]
        data[2] = lead_iii
        data[3] = -data[3][:count] - np.floor_divide(lead_i + lead_ii, 2)
        data[4] = np.floor_divide(lead_i - lead_iii, 2) - data[4][:count]
        data[5] = np.floor_divide(lead_ii + lead_iii, 2) - data[5][:count]
    return data


def _uncompressed(name: str, raw: bytes, count: int, samples: int) -> list[np.ndarray]:
    values = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.int32)
    if len(values) < count * samples:
        raise EcgFileError(
            name,
            _(
                "Philips XML: %(have)d samples where %(need)d are declared",
                have=len(values),
                need=count * samples,
            ),
        )
    return [values[i * samples : (i + 1) * samples] for i in range(count)]


def _device_report(root: Element) -> DeviceReport:
    interpretation = find_deep(root, "interpretation")
    block = find_child(interpretation, "globalmeasurements")
    if block is None:
        block = find_deep(root, "globalmeasurements")
    values: dict[str, float | None] = {}
    for tag, key in _VALUES.items():
        text = child_text(block, tag)
        try:
            values[key] = float(text) if text is not None else None
        except ValueError:
            continue
    statements = []
    for statement in find_all(interpretation, "statement"):
        left = child_text(statement, "leftstatement")
        right = child_text(statement, "rightstatement")
        line = " — ".join(part for part in (left, right) if part)
        if line:
            statements.append(line)
    severity = child_text(interpretation, "severity")
    if severity:
        statements.append(severity.strip("- "))
    return DeviceReport(SOURCE, plausible_device_values(values), tuple(statements))


def _patient(root: Element) -> PatientIdentifiers:
    general = find_deep(root, "generalpatientdata")
    names = [child_text(general, "name", "lastname"), child_text(general, "name", "firstname")]
    names = [n for n in names if n and n.strip("-")]
    return PatientIdentifiers(
        name=" ".join(names) or None,
        id=child_text(general, "patientid"),
        birth_date=child_text(general, "age", "dateofbirth"),
        sex=child_text(general, "sex"),
    )


def read_philips(name: str, root: Element, limits: EcgLimits) -> EcgSignal:
    info = find_child(root, "documentinfo")
    kind = child_text(info, "documenttype") or "?"
    version = child_text(info, "documentversion") or "?"
    if kind not in ("SierraECG", "PhilipsECG") or version not in VERSIONS:
        raise EcgFileError(
            name,
            _(
                "Philips XML %(kind)s %(version)s is not a version this service reads "
                "(1.03 to 1.04.02)",
                kind=kind,
                version=version,
            ),
        )
    waveforms = find_deep(root, "parsedwaveforms")
    characteristics = find_deep(root, "signalcharacteristics")
    if waveforms is None or not (waveforms.text or "").strip():
        raise EcgFileError(name, _("Philips XML: no parsed waveforms in the file"))
    rate = check_sampling_rate(
        name,
        _int(
            name,
            waveforms.get("samplespersecond") or child_text(characteristics, "samplingrate"),
            "sampling rate",
        ),
        limits,
    )
    duration_ms = _int(name, waveforms.get("durationperchannel"), "duration per channel")
    samples = int(duration_ms * rate / 1000)
    labels = (waveforms.get("leadlabels") or "").split()
    count = _int(name, waveforms.get("numberofleads") or str(len(labels) or 12), "number of leads")
    labels = labels[:count] if labels else list(_STANDARD_12[:count])
    check_shape(name, count, samples, limits)
    resolution = float(
        waveforms.get("resolution") or child_text(characteristics, "resolution") or 5
    )  # µV per unit
    encoding = waveforms.get("dataencoding") or "Base64"
    if encoding != "Base64":
        raise EcgFileError(
            name,
            _("Philips XML: waveform encoding %(encoding)s is not supported", encoding=encoding),
        )
    try:
        raw = base64.b64decode("".join(waveforms.text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise EcgFileError(name, _("Philips XML: the waveforms are not valid Base64")) from None
    compression = waveforms.get("compressmethod") or waveforms.get("compression") or "Uncompressed"
    if compression == "XLI":
        leads = _decompress(name, raw, labels)
    elif compression == "Uncompressed":
        leads = _uncompressed(name, raw, count, samples)
    else:
        raise EcgFileError(
            name,
            _("Philips XML: waveform compression %(method)s is not supported", method=compression),
        )
    length = min(samples, *(len(lead) for lead in leads))
    check_shape(name, count, length, limits)
    channels = [
        (label, lead[:length].astype(np.float32) * np.float32(resolution))
        for label, lead in zip(labels, leads, strict=False)
    ]
    acquisition = {
        "stored_units": f"{resolution:g} µV per unit",
        "high_pass_hz": _hz(waveforms.get("hipass") or child_text(characteristics, "hipass")),
        "low_pass_hz": _hz(waveforms.get("lowpass") or child_text(characteristics, "lowpass")),
        "mains_filter_hz": _hz(child_text(characteristics, "acsetting")),
        "compression": compression,
        "document": f"{kind} {version}",
    }
    return build_signal(
        channels,
        rate,
        "philips_sierra",
        patient=_patient(root),
        acquisition={k: v for k, v in acquisition.items() if v is not None},
        device=_device_report(root),
    )


def _hz(text: str | None) -> float | None:
    try:
        return float(text or "")
    except ValueError:
        return None


def is_philips_root(root: Element) -> bool:
    return local_name(root) == "restingecgdata"
