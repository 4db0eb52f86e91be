"""The cart's own values as readers find them: whole numbers, and only plausible ones.

A cart writes a sentinel (29999, -1, 0, an unfilled P duration of 508) where it measured
nothing; such a value is left out rather than shown as the device's finding.
"""

from __future__ import annotations

import math

from telemed.ecg.signal import DEVICE_VALUE_KEYS

_BOUNDS = {
    "heart_rate_bpm": (15.0, 350.0),
    "rr_ms": (170.0, 4000.0),
    "p_ms": (20.0, 250.0),
    "pr_ms": (40.0, 500.0),
    "qrs_ms": (30.0, 300.0),
    "qt_ms": (150.0, 800.0),
    "qtc_bazett_ms": (150.0, 800.0),
    "qtc_fridericia_ms": (150.0, 800.0),
    "qtc_ms": (150.0, 800.0),
    "p_axis_deg": (-180.0, 360.0),
    "qrs_axis_deg": (-180.0, 360.0),
    "t_axis_deg": (-180.0, 360.0),
}


def plausible_device_values(values: dict[str, float | None]) -> dict[str, int]:
    """Whole-number values within plausible bounds, in ``DEVICE_VALUE_KEYS`` order."""
    kept: dict[str, int] = {}
    for key in DEVICE_VALUE_KEYS:
        value = values.get(key)
        if value is None or not math.isfinite(value):
            continue
        low, high = _BOUNDS[key]
        if low <= value <= high:
            kept[key] = round(value)
    return kept
