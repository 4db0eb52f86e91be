"""Reading an ECG recording in the limited worker: the ECG library's reader, then the
normalised signal saved as ``.npz`` and the machine measurements, as plain values."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from telemed.imaging.reading import Refused


def read_and_normalise(
    files: list[tuple[str, str]], out: str, locale: str | None = None
) -> dict[str, Any]:
    from telemed.ecg import EcgFileError, measure, read_ecg
    from telemed.i18n import worded_in

    # What is stored (the readers' and the measurements' notes) stays in the source
    # language and is worded when a page shows it; a refusal goes straight back to the
    # person who sent the file, so the file is read again in their language to say why.
    try:
        signal = read_ecg(files)
    except EcgFileError as first:
        refusal = first
        try:
            with worded_in(locale):
                read_ecg(files)
        except EcgFileError as worded:
            refusal = worded
        raise Refused(f"{refusal.filename}: {refusal.reason}") from None
    temp = out + ".part.npz"
    np.savez_compressed(
        temp,
        samples=signal.samples.astype(np.float32),
        leads=np.array(signal.leads),
        source_leads=np.array(["" if s is None else s for s in signal.source_leads]),
        derived_leads=np.array(signal.derived_leads),
        sampling_rate=np.array(signal.sampling_rate),
        source_format=np.array(signal.source_format),
    )
    os.replace(temp, out)
    try:
        measurements = measure(signal).to_dict()
    except Exception as error:  # a tracing the delineator cannot follow: no numbers
        measurements = {"error": str(error)[:300], "is_machine_measurement": True}
    return {"summary": signal.summary(), "measurements": measurements}


def load_signal(path) -> Any:
    """The stored normalised signal back as an ``EcgSignal`` (for the SVG)."""
    from telemed.ecg.signal import EcgSignal

    with np.load(path, allow_pickle=False) as data:
        source = [str(s) or None for s in data["source_leads"]]
        return EcgSignal(
            leads=tuple(str(s) for s in data["leads"]),
            samples=data["samples"],
            sampling_rate=float(data["sampling_rate"]),
            source_format=str(data["source_format"]),
            source_leads=tuple(source),
            derived_leads=tuple(str(s) for s in data["derived_leads"]),
        )
