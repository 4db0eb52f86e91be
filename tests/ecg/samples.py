"""Paths of the real ECG sample files and independent ways to read what they hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
ECG = DATA / "ecg"
WFDB_HEADER = ECG / "100.hea"
WFDB_DATA = ECG / "100.dat"
WFDB_ANNOTATIONS = ECG / "100.atr"
AECG_MINIMUM = ECG / "minimum_aecg.xml"
AECG_FULL = ECG / "subject1_0.xml"
DICOM_WAVEFORM = DATA / "dicom" / "waveform_ecg.dcm"

# MIT annotation codes that mark a beat (ecgcodes.h: NORMAL..PACE, and the later beats)
_BEAT_CODES = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 25, 30, 31, 34, 35, 38}
_SKIP, _NUM, _SUB, _CHN, _AUX = 59, 60, 61, 62, 63


def mit_beat_samples(path: Path) -> list[int]:
    """Sample numbers of the beats in an MIT-format annotation file (e.g. ``100.atr``).

    Each 16-bit word: the top 6 bits are the code, the low 10 the time step; SKIP carries
    a 32-bit step in the next two words (high word first); AUX is followed by its bytes.
    """
    words = np.fromfile(path, dtype="<u2").tolist()
    beats: list[int] = []
    time = index = 0
    while index < len(words):
        code, value = words[index] >> 10, words[index] & 0x3FF
        index += 1
        if code == 0 and value == 0:
            break
        if code == _SKIP:
            time += (words[index] << 16) | words[index + 1]
            index += 2
        elif code == _AUX:
            index += (value + 1) // 2
        elif code in (_NUM, _SUB, _CHN):
            continue
        else:
            time += value
            if code in _BEAT_CODES:
                beats.append(time)
    return beats


def wfdb_header_fields() -> list[list[str]]:
    """The signal lines of 100.hea, split on whitespace (blank and comment lines dropped)."""
    lines = [
        line.split()
        for line in WFDB_HEADER.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return lines[1:]


def shared_samples() -> Path:
    """``shared/samples/ecg`` beside the repository (CI clones the repository next to a
    copy of ``shared/``; a work tree one level deeper finds it one level up). The files
    there are GPL-licensed and are read in place, never copied here. Missing is a
    failure, not a skip: these are the files the readers are held to."""
    root = Path(__file__).resolve().parents[2]
    for base in (root.parent, root.parent.parent):
        candidate = base / "shared" / "samples" / "ecg"
        if candidate.is_dir():
            return candidate
    raise AssertionError(f"shared/samples/ecg not found beside {root.name}")


SYNTHETIC = ECG / "synthetic"
