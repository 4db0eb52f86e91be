"""How pages show ECG values: the machine's beside the device's, and the reader's form.

Shared by the case page and the consult room (``templates/cases/_ecg_values.html``).
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from telemed import labels
from telemed.domain import ecg_values
from telemed.models.case_files import EcgRecording

LABELS = {
    "heart_rate_bpm": _l("Heart rate"),
    "p_ms": _l("P duration"),
    "pr_ms": "PR",
    "qrs_ms": "QRS",
    "qt_ms": "QT",
    "qtc_bazett_ms": _l("QTc (Bazett)"),
    "qtc_fridericia_ms": _l("QTc (Fridericia)"),
    "p_axis_deg": _l("P axis"),
    "qrs_axis_deg": _l("QRS axis"),
    "t_axis_deg": _l("T axis"),
}
QUALITY = {"good": _l("good"), "fair": _l("fair"), "poor": _l("poor")}
# What a reader states about how the cart recorded (``EcgRecording.acquisition``).
ACQUISITION = {
    "stored_units": (_l("stored in"), ""),
    "high_pass_hz": (_l("high-pass filter"), " Hz"),
    "low_pass_hz": (_l("low-pass filter"), " Hz"),
    "mains_filter_hz": (_l("mains filter"), " Hz"),
    "compression": (_l("compression"), ""),
    "document": (_l("document"), ""),
    "signal_files": (_l("signal files"), ""),
}


def acquisition_of(recording: EcgRecording) -> list[tuple[str, str]]:
    """(label, value) of each thing the reader stated about the recording; values are
    the file's own (units, a compression's name), shown as written."""
    shown = []
    for key, value in (recording.acquisition or {}).items():
        label, unit = ACQUISITION.get(key, (key, ""))
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        shown.append((str(label), f"{value}{unit}"))
    return shown


ACTIONS = {
    ecg_values.CONFIRMED: _l("confirmed"),
    ecg_values.CHANGED: _l("changed"),
    ecg_values.STRUCK: _l("struck"),
    ecg_values.ENTERED: _l("entered by the reader"),
}


# The measurements' notes as ``telemed.ecg.measure`` words them: it runs in a worker
# without a language, so the note is stored in the source language and worded here.
MEASUREMENT_NOTES = (
    "no lead to measure",
    "the recording is too short to measure (under %(s)g s)",
    "the lead is flat or invalid",
    "R waves not found (%(e)s)",
    "fewer than 3 beats found",
    "no plausible RR interval",
    "fewer than 3 regular beats: no median beat",
    "no QRS complex found in the median beat",
    "%(value)s withheld: implausible (%(ms)d ms)",
    "no P wave found: P and PR not measured",
    "no T wave end found: QT not measured",
)
_PLACEHOLDER = re.compile(r"%\((\w+)\)([sdg])")


def _note_pattern(msgid: str) -> tuple[re.Pattern, dict[str, str]]:
    parts = _PLACEHOLDER.split(msgid)  # text, name, conversion, text, ...
    regex, conversions = "", {}
    for i in range(0, len(parts), 3):
        regex += re.escape(parts[i])
        if i + 1 < len(parts):
            regex += f"(?P<{parts[i + 1]}>.+?)"
            conversions[parts[i + 1]] = parts[i + 2]
    return re.compile(regex), conversions


_NOTE_PATTERNS = [(msgid, *_note_pattern(msgid)) for msgid in MEASUREMENT_NOTES]


def worded_note(note: str) -> str:
    """A stored measurement note in the current language (unknown ones as stored)."""
    for msgid, pattern, conversions in _NOTE_PATTERNS:
        found = pattern.fullmatch(note)
        if found is None:
            continue
        params: dict[str, Any] = {}
        for name, value in found.groupdict().items():
            kind = conversions[name]
            try:
                params[name] = int(value) if kind == "d" else float(value) if kind == "g" else value
            except ValueError:
                return note
        return gettext(msgid, **params)
    return note


def table_of(recording: EcgRecording) -> dict[str, Any]:
    """What the values table of one read recording shows."""
    device = recording.device_report or {}
    measurements = recording.measurements or {}
    return {
        "rows": ecg_values.rows(measurements, device.get("values")),
        "device_source": labels.device_source(device.get("source")),
        "device_statements": device.get("statements") or [],
        "quality": measurements.get("quality"),
        "notes": [worded_note(n) for n in measurements.get("notes") or []],
    }


def choices_from_form(form) -> dict[str, tuple[str | None, str | None]] | None:
    """The reader's choice per value (``ecg_<key>_action``, ``ecg_<key>_value``), or None
    when the form carried no ECG values."""
    if not any(f"ecg_{key}_action" in form for key, _unit in ecg_values.MEASURES):
        return None
    return {
        key: (form.get(f"ecg_{key}_action") or None, form.get(f"ecg_{key}_value") or None)
        for key, _unit in ecg_values.MEASURES
    }
