"""The ECG values a report states: the machine's, the device's, and the reader's word.

Plain values only. ``rows`` lines up, per measure, what this service measured (and
whether it is uncertain) beside what the recording cart reported. ``reader_values``
turns the signing reader's choice per measure (confirm, change, strike) into what the
report records, so the signed report says which values were the machine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (key, unit) in the order a report lists them
MEASURES: tuple[tuple[str, str], ...] = (
    ("heart_rate_bpm", "bpm"),
    ("p_ms", "ms"),
    ("pr_ms", "ms"),
    ("qrs_ms", "ms"),
    ("qt_ms", "ms"),
    ("qtc_bazett_ms", "ms"),
    ("qtc_fridericia_ms", "ms"),
    ("p_axis_deg", "°"),
    ("qrs_axis_deg", "°"),
    ("t_axis_deg", "°"),
)
# what the reader may do with a value; "entered" is a value the machine did not give
CONFIRMED, CHANGED, STRUCK, ENTERED = "confirmed", "changed", "struck", "entered"
CHOICES = (CONFIRMED, CHANGED, STRUCK)
# a reader's value outside these is a typing slip, refused with its field
_BOUNDS = {"bpm": (10, 400), "ms": (10, 1000), "°": (-180, 360)}


@dataclass(frozen=True)
class ValueRow:
    key: str
    unit: str
    machine: int | None
    uncertain: bool
    device: int | None

    @property
    def default_choice(self) -> str:
        """A sure machine value is confirmed unless the reader says otherwise; an uncertain
        or missing one is struck until the reader gives it."""
        return CONFIRMED if self.machine is not None and not self.uncertain else STRUCK


class ValueRefused(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def rows(
    measurements: dict[str, Any] | None, device_values: dict[str, Any] | None
) -> list[ValueRow]:
    machine = measurements or {}
    device = device_values or {}
    uncertain = set(machine.get("uncertain") or ())
    out = []
    for key, unit in MEASURES:
        mine = machine.get(key)
        # QTc is uncertain whenever the QT it comes from is
        shaky = key in uncertain or (key.startswith("qtc_") and "qt_ms" in uncertain)
        if machine.get("quality") == "poor" and mine is not None:
            shaky = True
        out.append(ValueRow(key, unit, mine, shaky, device.get(key)))
    return out


def reader_values(
    value_rows: list[ValueRow], choices: dict[str, tuple[str | None, str | None]]
) -> list[dict[str, Any]]:
    """What the report records per measure: ``{"key", "unit", "machine", "uncertain",
    "device", "value", "action"}``. ``choices`` maps a key to (action, typed value);
    a missing action is the row's default. Raises ``ValueRefused`` naming the key."""
    recorded = []
    for row in value_rows:
        action, text = choices.get(row.key, (None, None))
        action = action or row.default_choice
        if action not in CHOICES:
            raise ValueRefused(row.key, f"{row.key}: choose confirm, change or strike")
        typed = _whole(row.key, row.unit, text)
        if action == CONFIRMED and row.machine is None:
            if typed is None:
                raise ValueRefused(row.key, f"{row.key}: there is no machine value to confirm")
            action = ENTERED
        if action == CHANGED:
            if typed is None:
                raise ValueRefused(row.key, f"{row.key}: give the changed value")
            if row.machine is None:
                action = ENTERED
            elif typed == row.machine:
                action = CONFIRMED
        value = {CONFIRMED: row.machine, STRUCK: None}.get(action, typed)
        if action == STRUCK and row.machine is None and row.device is None:
            continue  # nothing was measured and nothing is said: no line
        recorded.append(
            {
                "key": row.key,
                "unit": row.unit,
                "machine": row.machine,
                "uncertain": row.uncertain,
                "device": row.device,
                "value": value,
                "action": action,
            }
        )
    return recorded


def _whole(key: str, unit: str, text: str | None) -> int | None:
    if text is None or not str(text).strip():
        return None
    try:
        value = round(float(str(text).strip()))
    except ValueError:
        raise ValueRefused(key, f"{key}: {text!r} is not a number") from None
    low, high = _BOUNDS[unit]
    if not low <= value <= high:
        raise ValueRefused(key, f"{key}: {value} {unit} is outside {low}–{high} {unit}")
    return value
