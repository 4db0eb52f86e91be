"""The normalised ECG every reader produces: leads by samples in microvolts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from telemed.ecg.leads import canonical_lead_name, derive_limb_leads, order_leads

SourceFormat = Literal["dicom", "hl7_aecg", "ge_muse", "philips_sierra", "scp_ecg", "wfdb", "csv"]

# The global values a cart may report, in the units named: ms, bpm, degrees.
DEVICE_VALUE_KEYS = (
    "heart_rate_bpm",
    "rr_ms",
    "p_ms",
    "pr_ms",
    "qrs_ms",
    "qt_ms",
    "qtc_bazett_ms",
    "qtc_fridericia_ms",
    "qtc_ms",
    "p_axis_deg",
    "qrs_axis_deg",
    "t_axis_deg",
)


@dataclass(frozen=True)
class EcgLimits:
    """What a reader accepts before it allocates anything.

    ``max_values`` bounds leads × samples (float32: 4 bytes each), so a header claiming
    absurd sizes is refused before memory is taken; 16 million values is a 12-lead
    resting ECG many times over, or a 2-lead Holter of about 6 hours at 360 Hz.
    """

    max_file_bytes: int = 64 * 1024 * 1024
    # XML trees take several times their file size in memory; a 10 s 12-lead aECG is ~0.5 MB
    max_xml_bytes: int = 16 * 1024 * 1024
    max_values: int = 16_000_000
    max_leads: int = 32
    min_sampling_rate: float = 50.0
    max_sampling_rate: float = 20_000.0


DEFAULT_LIMITS = EcgLimits()


@dataclass(frozen=True)
class PatientIdentifiers:
    """Who the file says the recording is of, for the case page's mismatch warning."""

    name: str | None = None
    id: str | None = None
    birth_date: str | None = None
    sex: str | None = None

    def is_empty(self) -> bool:
        return not any((self.name, self.id, self.birth_date, self.sex))


@dataclass(frozen=True)
class DeviceReport:
    """What the recording cart itself measured and concluded, as the file carries it.

    ``source`` names the program or section it came from ("GE MUSE (12SL)", "SCP-ECG
    section 7"); ``values`` uses the keys of ``DEVICE_VALUE_KEYS``; ``statements`` are the
    interpretation lines in the cart's own words (usually English).
    """

    source: str
    values: dict[str, int] = field(default_factory=dict)
    statements: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "values": dict(self.values),
            "statements": list(self.statements),
        }


@dataclass(frozen=True, eq=False)
class EcgSignal:
    """An ECG recording: ``samples[i]`` is lead ``leads[i]`` in microvolts (float32).

    ``source_leads[i]`` is the label the file gave that lead (None for a derived lead);
    ``derived_leads`` names the leads computed from two stored limb leads.
    """

    leads: tuple[str, ...]
    samples: np.ndarray
    sampling_rate: float
    source_format: SourceFormat
    source_leads: tuple[str | None, ...]
    derived_leads: tuple[str, ...] = ()
    patient: PatientIdentifiers = field(default_factory=PatientIdentifiers)
    warnings: tuple[str, ...] = ()
    # units the file stored, its filters (Hz) and the like, as the reader found them
    acquisition: dict[str, Any] = field(default_factory=dict)
    device: DeviceReport | None = None

    @property
    def sample_count(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.sample_count / self.sampling_rate

    def has_lead(self, name: str) -> bool:
        return name in self.leads

    def lead(self, name: str) -> np.ndarray:
        """One lead's samples in microvolts; KeyError when the recording lacks it."""
        return self.samples[self.leads.index(name)]

    def summary(self) -> dict[str, Any]:
        """Plain values for JSON and for storing beside the file."""
        return {
            "leads": list(self.leads),
            "source_leads": list(self.source_leads),
            "derived_leads": list(self.derived_leads),
            "sampling_rate": self.sampling_rate,
            "sample_count": self.sample_count,
            "duration_s": round(self.duration_s, 3),
            "source_format": self.source_format,
            "patient": {
                "name": self.patient.name,
                "id": self.patient.id,
                "birth_date": self.patient.birth_date,
                "sex": self.patient.sex,
            },
            "warnings": list(self.warnings),
            "acquisition": dict(self.acquisition),
            "device": self.device.to_dict() if self.device else None,
        }


def build_signal(
    channels: list[tuple[str, np.ndarray]],
    sampling_rate: float,
    source_format: SourceFormat,
    *,
    patient: PatientIdentifiers | None = None,
    warnings: list[str] | None = None,
    acquisition: dict[str, Any] | None = None,
    device: DeviceReport | None = None,
) -> EcgSignal:
    """Name the channels in standard terms, add the derivable limb leads, stack them.

    ``channels`` are (label as in the file, values in microvolts), all the same length.
    A second channel that maps onto a name already taken keeps its own label.
    """
    names: list[str] = []
    sources: list[str | None] = []
    values: list[np.ndarray] = []
    for label, data in channels:
        name = canonical_lead_name(label) or f"ch{len(names) + 1}"
        if name in names:
            name = label.strip() or f"ch{len(names) + 1}"
            while name in names:
                name += "'"
        names.append(name)
        sources.append(label)
        values.append(np.asarray(data, dtype=np.float32))

    derived = derive_limb_leads(dict(zip(names, values, strict=True)))
    for name, data in derived.items():
        names.append(name)
        sources.append(None)
        values.append(data)

    order = order_leads(names)
    count = len(values[0]) if values else 0
    samples = np.empty((len(order), count), dtype=np.float32)
    for row, index in enumerate(order):
        samples[row] = values[index]
    return EcgSignal(
        leads=tuple(names[i] for i in order),
        samples=samples,
        sampling_rate=float(sampling_rate),
        source_format=source_format,
        source_leads=tuple(sources[i] for i in order),
        derived_leads=tuple(name for name in (names[i] for i in order) if name in derived),
        patient=patient or PatientIdentifiers(),
        warnings=tuple(warnings or ()),
        acquisition=dict(acquisition or {}),
        device=device if device and (device.values or device.statements) else None,
    )
