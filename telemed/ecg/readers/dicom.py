"""DICOM waveform objects (12-lead, general ECG): the rhythm multiplex group."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
from flask_babel import gettext as _
from pydicom.errors import InvalidDicomError
from pydicom.waveforms.numpy_handler import WAVEFORM_DTYPES

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers._checks import check_sampling_rate, check_shape, checked_size
from telemed.ecg.readers.device_values import plausible_device_values
from telemed.ecg.signal import DeviceReport, EcgLimits, EcgSignal, PatientIdentifiers, build_signal

_UNITS_TO_MICROVOLT = {"uv": 1.0, "mv": 1000.0, "v": 1_000_000.0, "nv": 0.001}
# SCP-ECG lead codes ("5.6.3-9-N") and MDC codes ("2:N") share these numbers.
_LEAD_NUMBERS = {
    "1": "I",
    "2": "II",
    "3": "V1",
    "4": "V2",
    "5": "V3",
    "6": "V4",
    "7": "V5",
    "8": "V6",
    "61": "III",
    "62": "aVR",
    "63": "aVL",
    "64": "aVF",
}


def _lead_label(channel) -> str:
    source = channel.get("ChannelSourceSequence")
    if source:
        item = source[0]
        value = str(item.get("CodeValue", ""))
        scheme = str(item.get("CodingSchemeDesignator", ""))
        number = None
        if scheme == "SCPECG" and value.startswith("5.6.3-9-"):
            number = value.rsplit("-", 1)[-1]
        elif scheme == "MDC" and value.startswith("2:"):
            number = value[2:]
        if number in _LEAD_NUMBERS:
            return _LEAD_NUMBERS[number]
        meaning = str(item.get("CodeMeaning", "")).strip()
        if meaning:
            return meaning
    return str(channel.get("ChannelLabel", "")).strip()


def _unit_factor(name: str, channel, label: str) -> float:
    units = channel.get("ChannelSensitivityUnitsSequence")
    code = str(units[0].get("CodeValue", "")).lower() if units else "uv"
    factor = _UNITS_TO_MICROVOLT.get(code)
    if factor is None:
        raise EcgFileError(
            name, _("lead %(lead)s has unit %(unit)r, not a voltage", lead=label, unit=code)
        )
    return factor


def _choose_group(groups) -> int:
    """The rhythm group if labelled so, else the longest-lasting one (not median beats)."""
    for index, group in enumerate(groups):
        if str(group.get("MultiplexGroupLabel", "")).strip().upper() == "RHYTHM":
            return index

    def duration(index: int) -> float:
        group = groups[index]
        rate = float(group.get("SamplingFrequency", 0) or 0)
        return float(group.get("NumberOfWaveformSamples", 0) or 0) / rate if rate else 0.0

    return max(range(len(groups)), key=duration)


def _text(value) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def read_dicom_waveform(name: str, path: Path, limits: EcgLimits) -> EcgSignal:
    checked_size(name, path, limits)
    try:
        # A truncated file makes pydicom warn and return what it got; that is checked below.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise EcgFileError(name, _("not a DICOM file")) from None
    except Exception as error:  # pydicom raises many kinds on broken files
        raise EcgFileError(
            name, _("unreadable DICOM (%(detail)s)", detail=type(error).__name__)
        ) from None

    groups = ds.get("WaveformSequence")
    if not groups:
        raise EcgFileError(name, _("the DICOM file holds no waveform"))
    group = groups[_choose_group(groups)]
    try:
        channels = int(group.NumberOfWaveformChannels)
        count = int(group.NumberOfWaveformSamples)
        rate = float(group.SamplingFrequency)
        bits = int(group.WaveformBitsAllocated)
        interpretation = str(group.WaveformSampleInterpretation)
        definitions = list(group.ChannelDefinitionSequence)
        data = group.WaveformData
    except (AttributeError, ValueError, TypeError):
        raise EcgFileError(name, _("the waveform lacks a required attribute")) from None
    rate = check_sampling_rate(name, rate, limits)
    check_shape(name, channels, count, limits)
    dtype = WAVEFORM_DTYPES.get((bits, interpretation))
    if dtype is None:
        raise EcgFileError(
            name,
            _(
                "waveform samples of %(bits)d bits %(kind)s are not supported",
                bits=bits,
                kind=interpretation,
            ),
        )
    if len(definitions) != channels:
        raise EcgFileError(
            name,
            _(
                "the waveform declares %(n)d channels but defines %(m)d",
                n=channels,
                m=len(definitions),
            ),
        )
    needed = channels * count * np.dtype(dtype).itemsize
    if len(data) < needed:
        raise EcgFileError(
            name,
            _(
                "waveform data is %(have)d bytes, shorter than the %(need)d declared",
                have=len(data),
                need=needed,
            ),
        )
    frames = np.frombuffer(data, dtype=dtype, count=channels * count).reshape(count, channels)

    leads: list[tuple[str, np.ndarray]] = []
    for column, channel in enumerate(definitions):
        label = _lead_label(channel) or f"channel {column + 1}"
        sensitivity = float(channel.get("ChannelSensitivity", 1.0) or 1.0)
        correction = float(channel.get("ChannelSensitivityCorrectionFactor", 1.0) or 1.0)
        baseline = float(channel.get("ChannelBaseline", 0.0) or 0.0)
        factor = _unit_factor(name, channel, label)
        # PS3.3 C.10.9.1.4: value = sample × sensitivity × correction + baseline (in the units).
        values = frames[:, column].astype(np.float32) * np.float32(sensitivity * correction)
        values = (values + np.float32(baseline)) * np.float32(factor)
        leads.append((label, values))

    patient = PatientIdentifiers(
        name=_text(ds.get("PatientName")),
        id=_text(ds.get("PatientID")),
        birth_date=_text(ds.get("PatientBirthDate")),
        sex=_text(ds.get("PatientSex")),
    )
    first = definitions[0] if definitions else None
    acquisition = {
        "stored_units": f"{int(bits)}-bit {interpretation}",
        "high_pass_hz": _number(first, "FilterLowFrequency"),
        "low_pass_hz": _number(first, "FilterHighFrequency"),
        "mains_filter_hz": _number(first, "NotchFilterFrequency"),
    }
    return build_signal(
        leads,
        rate,
        "dicom",
        patient=patient,
        acquisition={k: v for k, v in acquisition.items() if v is not None},
        device=_device_report(ds),
    )


# SCP-ECG code meanings of the Waveform Annotation Sequence (PS3.16 CID 3678 and 3679)
_ANNOTATION_VALUES = {
    "rr interval": "rr_ms",
    "pr interval": "pr_ms",
    "qrs duration": "qrs_ms",
    "qt interval": "qt_ms",
    "qtc interval": "qtc_ms",
    "p duration": "p_ms",
    "p axis": "p_axis_deg",
    "qrs axis": "qrs_axis_deg",
    "t axis": "t_axis_deg",
    "ventricular heart rate": "heart_rate_bpm",
    "heart rate": "heart_rate_bpm",
}


def _device_report(ds) -> DeviceReport:
    """The cart's values and statements from the Waveform Annotation Sequence."""
    values: dict[str, float | None] = {}
    statements: list[str] = []
    for annotation in ds.get("WaveformAnnotationSequence") or []:
        text = _text(annotation.get("UnformattedTextValue"))
        if text:
            statements.append(text)
            continue
        concept = annotation.get("ConceptNameCodeSequence")
        key = (
            _ANNOTATION_VALUES.get(str(concept[0].get("CodeMeaning", "")).lower())
            if concept
            else None
        )
        if key and key not in values and annotation.get("NumericValue") is not None:
            try:
                values[key] = float(annotation.NumericValue)
            except (TypeError, ValueError):
                continue
    if values.get("rr_ms") and "heart_rate_bpm" not in values:
        values["heart_rate_bpm"] = 60000.0 / values["rr_ms"]
    return DeviceReport(
        "DICOM waveform annotations", plausible_device_values(values), tuple(statements)
    )


def _number(channel, keyword: str) -> float | None:
    """A channel's filter setting in Hz (PS3.3 C.10.9.1.4), or None when absent or 0."""
    try:
        value = float(channel.get(keyword)) if channel is not None else None
    except (TypeError, ValueError):
        return None
    return value or None
