"""``read_ecg``: which reader a set of uploaded files needs, and the one call to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers.aecg import read_aecg
from telemed.ecg.readers.csv import read_csv
from telemed.ecg.readers.dicom import read_dicom_waveform
from telemed.ecg.readers.wfdb import read_wfdb
from telemed.ecg.signal import DEFAULT_LIMITS, EcgLimits, EcgSignal, SourceFormat

EcgFile = Path | str | tuple[str, Path | str]

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_XML_SUFFIXES = (".xml",)
_DICOM_SUFFIXES = (".dcm", ".dicom")


def _as_named(item: EcgFile) -> tuple[str, Path]:
    if isinstance(item, tuple):
        name, path = item
        return str(name), Path(path)
    path = Path(item)
    return path.name, path


def _head(path: Path, size: int = 256) -> bytes:
    try:
        with path.open("rb") as stream:
            return stream.read(size)
    except OSError:
        return b""


def detect_ecg_format(name: str, path: Path | str) -> SourceFormat | None:
    """The format a file looks like, by its content first and then its name.

    ``.hea`` files are WFDB headers; their ``.dat`` files are not recordings on their own.
    A DICOM file is reported as ``"dicom"`` whatever it holds: only the reader can tell
    a waveform from an image.
    """
    lower = name.lower()
    if lower.endswith(".hea"):
        return "wfdb"
    head = _head(Path(path))
    if head[128:132] == b"DICM" or lower.endswith(_DICOM_SUFFIXES):
        return "dicom"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") or lower.endswith(_XML_SUFFIXES):
        return "hl7_aecg"
    if lower.endswith(_CSV_SUFFIXES):
        return "csv"
    return None


def read_ecg(
    files: Sequence[EcgFile],
    *,
    sampling_rate: float | None = None,
    limits: EcgLimits = DEFAULT_LIMITS,
) -> EcgSignal:
    """One ECG recording from the files that hold it.

    ``files`` are paths, or ``(name as uploaded, path on disk)`` pairs when the stored
    name differs: a WFDB header finds its ``.dat`` by the uploaded name. One recording per
    call: a WFDB header with its data file(s) (other files of the record, such as ``.atr``
    annotations, are ignored), or exactly one DICOM waveform, HL7 aECG or CSV file.
    ``sampling_rate`` is for CSV files that do not state theirs.

    Raises ``EcgFileError`` (a 422 ``InvalidInput``) naming the file and the reason.
    Reads only; writes nothing.
    """
    named = [_as_named(item) for item in files]
    if not named:
        raise EcgFileError("-", _("no file was sent"))
    headers = [(name, path) for name, path in named if name.lower().endswith(".hea")]
    if len(headers) > 1:
        raise EcgFileError(headers[1][0], _("send one WFDB record at a time"))
    if headers:
        return read_wfdb(headers[0], dict(named), limits)
    if len(named) > 1:
        raise EcgFileError(named[1][0], _("send one ECG recording at a time"))

    name, path = named[0]
    kind = detect_ecg_format(name, path)
    if kind == "dicom":
        return read_dicom_waveform(name, path, limits)
    if kind == "hl7_aecg":
        return read_aecg(name, path, limits)
    if kind == "csv":
        return read_csv(name, path, limits, sampling_rate=sampling_rate)
    if name.lower().endswith(".dat"):
        raise EcgFileError(name, _("a WFDB .dat file needs its .hea header"))
    raise EcgFileError(
        name, _("not a recognised ECG file (DICOM waveform, HL7 aECG XML, WFDB .hea/.dat or CSV)")
    )
