"""How pages show ECG values: the machine's beside the device's, and the reader's form.

Shared by the case page and the consult room (``templates/cases/_ecg_values.html``).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

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
ACTIONS = {
    ecg_values.CONFIRMED: _l("confirmed"),
    ecg_values.CHANGED: _l("changed"),
    ecg_values.STRUCK: _l("struck"),
    ecg_values.ENTERED: _l("entered by the reader"),
}


def table_of(recording: EcgRecording) -> dict[str, Any]:
    """What the values table of one read recording shows."""
    device = recording.device_report or {}
    measurements = recording.measurements or {}
    return {
        "rows": ecg_values.rows(measurements, device.get("values")),
        "device_source": device.get("source"),
        "device_statements": device.get("statements") or [],
        "quality": measurements.get("quality"),
        "notes": measurements.get("notes") or [],
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
