"""``read_ecg``: which reader a set of uploaded files needs, and the one call to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers.aecg import read_aecg
from telemed.ecg.readers.csv import read_csv
from telemed.ecg.readers.dicom import read_dicom_waveform
from telemed.ecg.readers.muse import read_muse
from telemed.ecg.readers.philips import read_philips
from telemed.ecg.readers.scp import is_scp_head, read_scp
from telemed.ecg.readers.wfdb import read_wfdb
from telemed.ecg.readers.xml_safe import local_name, parse_xml
from telemed.ecg.signal import DEFAULT_LIMITS, EcgLimits, EcgSignal, SourceFormat

EcgFile = Path | str | tuple[str, Path | str]

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_XML_SUFFIXES = (".xml",)
_DICOM_SUFFIXES = (".dcm", ".dicom")
_SCP_SUFFIXES = (".scp",)
# root element → format, for XML files; sniffed from the start of the file
_XML_ROOTS = {
    "AnnotatedECG": "hl7_aecg",
    "RestingECG": "ge_muse",
    "restingecgdata": "philips_sierra",
}


def _as_named(item: EcgFile) -> tuple[str, Path]:
    if isinstance(item, tuple):
        name, path = item
        return str(name), Path(path)
    path = Path(item)
    return path.name, path


def _head(path: Path, size: int = 4096) -> bytes:
    try:
        with path.open("rb") as stream:
            return stream.read(size)
    except OSError:
        return b""


def detect_ecg_format(name: str, path: Path | str) -> SourceFormat | None:
    """The format a file looks like, by its content first and then its name.

    ``.hea`` files are WFDB headers; their signal files are not recordings on their own.
    A DICOM file is reported as ``"dicom"`` whatever it holds: only the reader can tell
    a waveform from an image. An XML file is named by its root element as far as the
    first 4 KB show it (HL7 aECG when they do not).
    """
    lower = name.lower()
    if lower.endswith(".hea"):
        return "wfdb"
    head = _head(Path(path))
    if head[128:132] == b"DICM" or lower.endswith(_DICOM_SUFFIXES):
        return "dicom"
    if is_scp_head(head) or lower.endswith(_SCP_SUFFIXES):
        return "scp_ecg"
    text = _xml_text(head)
    if text is not None or lower.endswith(_XML_SUFFIXES):
        for root, kind in _XML_ROOTS.items():
            if text and (f"<{root}" in text or f":{root}" in text):
                return kind
        return "hl7_aecg"
    if lower.endswith(_CSV_SUFFIXES):
        return "csv"
    return None


def _xml_text(head: bytes) -> str | None:
    """The start of an XML file as text (UTF-8 or UTF-16 by its BOM), or None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head[: len(head) // 2 * 2].decode("utf-16", errors="ignore")
    else:
        text = head.decode("latin-1")
    stripped = text.lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    return text if stripped.startswith("<") else None


def read_ecg(
    files: Sequence[EcgFile],
    *,
    sampling_rate: float | None = None,
    limits: EcgLimits = DEFAULT_LIMITS,
) -> EcgSignal:
    """One ECG recording from the files that hold it.

    ``files`` are paths, or ``(name as uploaded, path on disk)`` pairs when the stored
    name differs: a WFDB header finds its ``.dat`` by the uploaded name. One recording per
    call: a WFDB header with its signal files (``.dat``, and ``.xyz`` in PTB records;
    other files of the record, such as ``.atr`` annotations, are ignored), or exactly one
    DICOM waveform, HL7 aECG, GE MUSE XML, Philips XML, SCP-ECG or CSV file.
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
    if kind == "scp_ecg":
        return read_scp(name, path, limits)
    if kind in ("hl7_aecg", "ge_muse", "philips_sierra"):
        return _read_xml(name, path, limits)
    if kind == "csv":
        return read_csv(name, path, limits, sampling_rate=sampling_rate)
    if name.lower().endswith((".dat", ".xyz")):
        raise EcgFileError(name, _("a WFDB signal file needs its .hea header"))
    raise EcgFileError(
        name,
        _(
            "not a recognised ECG file (DICOM waveform, HL7 aECG, GE MUSE or Philips XML, "
            "SCP-ECG, WFDB .hea with its signal files, or CSV)"
        ),
    )


def _read_xml(name: str, path: Path, limits: EcgLimits) -> EcgSignal:
    """Parse once, safely, and let the root element choose the reader."""
    root = parse_xml(name, path, limits)
    kind = _XML_ROOTS.get(local_name(root))
    if kind == "ge_muse":
        return read_muse(name, root, limits)
    if kind == "philips_sierra":
        return read_philips(name, root, limits)
    if kind == "hl7_aecg":
        return read_aecg(name, root, limits)
    raise EcgFileError(
        name,
        _(
            "an XML document <%(root)s> is not an ECG format this service reads "
            "(HL7 aECG, GE MUSE RestingECG, Philips SierraECG)",
            root=local_name(root)[:60],
        ),
    )
