"""Reading one DICOM file: refuse what is hostile or broken, index what is sound.

:func:`inspect` runs inside the limited worker process (worker.py): a file that makes
pydicom or a codec misbehave costs that process, never the server. :func:`inspect_native`
runs in the server for the common case that needs no codec and little parsing: native
(uncompressed) little-endian data whose pixel data element ends the file and whose header
before it is at most ``HEADER_IN_PROCESS`` bytes. Only that bounded header is parsed; the
pixel data is checked from its element's length, never read. Anything else (compressed,
a large header, a layout it cannot prove) goes to the worker. Every refusal is a
:class:`Refused` whose message says what is wrong with the file, in words a user can act on.
"""

from __future__ import annotations

import io
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREAMBLE = 128
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
# An identifier off the UID grammar that is still kept: what a URL path segment carries
# unescaped, so every DICOMweb address of the instance stays plain.
UID_AS_SENT = re.compile(r"^[0-9A-Za-z._~-]+$")
# Preambles that make the file something else too (CVE-2019-11687). A TIFF header is a
# documented dual-personality use (PS3.10 7.5) and is accepted with the preamble zeroed on
# storage; an executable is a polyglot attack and is refused.
EXECUTABLE_PREAMBLES = {b"MZ": "windows", b"\x7fELF": "elf"}
TIFF_PREAMBLES = (b"II*\x00", b"MM\x00*")

# What a stored file's notes may say, as templates ({name}: a value); pages word a note
# in the reader's language by the template it was made from (web/file_notes.py).
NOTE_TIFF_PREAMBLE = "the preamble held a TIFF header; it was zeroed when stored"
NOTE_BITS = "Bits Allocated {bits} cannot be displayed"
NOTE_SAMPLES = "Samples per Pixel {samples} cannot be displayed"
NOTE_PIXEL_REPRESENTATION = "Pixel Representation must be 0 or 1"
NOTE_COLOUR_MODEL = "three samples per pixel need an RGB or YBR photometric interpretation"
NOTE_UNDECODABLE_SYNTAX = "transfer syntax {transfer_syntax} cannot be decoded here"
NOTE_NO_PLUGIN = "no installed plugin decodes transfer syntax {transfer_syntax}"
NOTE_DECODING_FAILED = "pixel data could not be decoded ({detail})"
NOTE_NO_PIXEL_DATA = "the header declares an image but the file has no pixel data"
NOTE_UID_GRAMMAR = (
    "{keyword} {value} does not follow the UID grammar (digits and dots, PS3.5 9.1); stored as sent"
)
NOTE_TEMPLATES = (
    NOTE_TIFF_PREAMBLE,
    NOTE_BITS,
    NOTE_SAMPLES,
    NOTE_PIXEL_REPRESENTATION,
    NOTE_COLOUR_MODEL,
    NOTE_UNDECODABLE_SYNTAX,
    NOTE_NO_PLUGIN,
    NOTE_DECODING_FAILED,
    NOTE_NO_PIXEL_DATA,
    NOTE_UID_GRAMMAR,
)

# Why a file is refused, as templates too: the reader runs in a worker without a language,
# so the web words a refusal for its reader by the template it was made from.
REFUSED_NO_MARKER = "not a DICOM file (no 'DICM' marker after a 128-byte preamble)"
REFUSED_WINDOWS_EXECUTABLE = (
    "the DICOM preamble holds a Windows executable (MZ); refused as a polyglot file"
)
REFUSED_ELF_EXECUTABLE = "the DICOM preamble holds an ELF executable; refused as a polyglot file"
REFUSED_SCRIPT = "the DICOM preamble holds a script (#!); refused as a polyglot file"
REFUSED_NOT_DICOM = "not a DICOM file ({detail})"
REFUSED_TRUNCATED = "truncated DICOM file ({detail})"
REFUSED_UNREADABLE_HEADER = "unreadable DICOM header ({detail})"
REFUSED_EMPTY = "truncated or empty DICOM file (no data elements could be read)"
REFUSED_FRAMES = "the header declares {frames} frames; at most {max_frames} allowed"
REFUSED_FRAME_PIXELS = (
    "a frame of {columns}×{rows} pixels ({megapixels} MP) is over the {max_megapixels} MP "
    "a frame may have to be shown; refused before decoding"
)
REFUSED_PIXEL_BYTES = (
    "the header declares {columns}×{rows} pixels × {frames} frame(s) ({megabytes} MB "
    "decoded), over the {max_megabytes} MB limit; refused before decoding"
)
REFUSED_NO_SYNTAX = "the file meta information has no Transfer Syntax UID"
REFUSED_UID_LENGTH = "{keyword} is missing or longer than 64 characters"
REFUSED_UID_CHARACTERS = "{keyword} holds characters no identifier may carry"
REFUSED_PIXELS_CUT = (
    "pixel data is shorter than declared (fewer of {declared} bytes): truncated or corrupt"
)
REFUSED_PIXELS_SHORT = (
    "pixel data is shorter than declared ({have} of {declared} bytes): truncated or corrupt"
)
# In this order: the first template a refusal matches words it.
REFUSAL_TEMPLATES = (
    REFUSED_NO_MARKER,
    REFUSED_WINDOWS_EXECUTABLE,
    REFUSED_ELF_EXECUTABLE,
    REFUSED_SCRIPT,
    REFUSED_EMPTY,
    REFUSED_NOT_DICOM,
    REFUSED_TRUNCATED,
    REFUSED_UNREADABLE_HEADER,
    REFUSED_FRAMES,
    REFUSED_FRAME_PIXELS,
    REFUSED_PIXEL_BYTES,
    REFUSED_NO_SYNTAX,
    REFUSED_UID_LENGTH,
    REFUSED_UID_CHARACTERS,
    REFUSED_PIXELS_CUT,
    REFUSED_PIXELS_SHORT,
)
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
}


DEFER_BYTES = 64 * 1024
# In-process reading: native little-endian syntaxes, a header of at most this many bytes.
HEADER_IN_PROCESS = 128 * 1024
IN_PROCESS_SYNTAXES = {"1.2.840.10008.1.2": True, "1.2.840.10008.1.2.1": False}  # implicit?
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
TRAILING_PADDING_TAG = b"\xfc\xff\xfc\xff"
# warnings.catch_warnings is process-wide: in-process reads take turns (each is short).
_reading = threading.RLock()


def _native_pixel_length(ds, path: Path) -> tuple[int, bool]:
    """The pixel data element's length, and whether the file holds all of it."""
    raw = ds._dict.get(0x7FE00010)  # still raw when deferred: length without reading it
    length = getattr(raw, "length", None)
    tell = getattr(raw, "value_tell", None)
    if length is None or tell is None:
        return len(ds.PixelData), True
    return length, tell + length <= path.stat().st_size


class Refused(Exception):
    """The file is not accepted; the message says why."""


@dataclass(frozen=True)
class Limits:
    max_pixel_bytes: int = 1024**3
    max_frames: int = 5000
    # The render budget: one frame of more pixels would not decode within a worker's memory.
    max_frame_pixels: int = 64 * 1024**2


def _text(ds, keyword: str, limit: int = 200) -> str | None:
    value = ds.get(keyword)
    if value in (None, ""):
        return None
    return str(value)[:limit]


def _int(ds, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def check_preamble(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        return check_head(handle.read(PREAMBLE + 4))


def check_head(head: bytes) -> list[str]:
    """Refuse a file without the DICM marker or with a polyglot preamble; notes to keep."""
    if len(head) < PREAMBLE + 4 or head[PREAMBLE:] != b"DICM":
        raise Refused(REFUSED_NO_MARKER)
    preamble = head[:PREAMBLE]
    for magic, what in EXECUTABLE_PREAMBLES.items():
        if preamble.startswith(magic):
            raise Refused(
                REFUSED_WINDOWS_EXECUTABLE if what == "windows" else REFUSED_ELF_EXECUTABLE
            )
    if preamble.startswith(b"#!"):
        raise Refused(REFUSED_SCRIPT)
    if preamble.startswith(TIFF_PREAMBLES):
        return [NOTE_TIFF_PREAMBLE]
    return []


def _read(path, **kwargs):
    import pydicom
    from pydicom.errors import InvalidDicomError

    with _reading, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, **kwargs)
        except InvalidDicomError as error:
            raise Refused(REFUSED_NOT_DICOM.format(detail=error)) from None
        except (EOFError, OSError) as error:
            raise Refused(REFUSED_TRUNCATED.format(detail=error)) from None
        except (ValueError, KeyError, TypeError, NotImplementedError) as error:
            raise Refused(REFUSED_UNREADABLE_HEADER.format(detail=error)) from None
    for warning in caught:
        text = str(warning.message)
        if isinstance(path, str | Path):
            # pydicom names the file it read: a path on this server, not the sender's.
            text = re.sub(r"\s*in file \S+", "", text.replace(str(path), "the file"))
        if "End of file" in text or "delimiter" in text or "truncat" in text.lower():
            raise Refused(REFUSED_TRUNCATED.format(detail=text.splitlines()[0][:160]))
    if len(ds) == 0:
        raise Refused(REFUSED_EMPTY)
    return ds


def declared_pixel_bytes(ds) -> int:
    rows, columns = _int(ds, "Rows") or 0, _int(ds, "Columns") or 0
    frames = max(_int(ds, "NumberOfFrames") or 1, 1)
    samples = max(_int(ds, "SamplesPerPixel") or 1, 1)
    bits = _int(ds, "BitsAllocated") or 8
    return (rows * columns * frames * samples * bits + 7) // 8


def _check_size(ds, limits: Limits) -> None:
    rows, columns = _int(ds, "Rows") or 0, _int(ds, "Columns") or 0
    frames = max(_int(ds, "NumberOfFrames") or 1, 1)
    if frames > limits.max_frames:
        raise Refused(REFUSED_FRAMES.format(frames=frames, max_frames=limits.max_frames))
    if rows * columns > limits.max_frame_pixels:
        raise Refused(
            REFUSED_FRAME_PIXELS.format(
                columns=columns,
                rows=rows,
                megapixels=f"{rows * columns / 1024**2:.0f}",
                max_megapixels=limits.max_frame_pixels // 1024**2,
            )
        )
    size = declared_pixel_bytes(ds)
    if size > limits.max_pixel_bytes:
        raise Refused(
            REFUSED_PIXEL_BYTES.format(
                columns=columns,
                rows=rows,
                frames=frames,
                megabytes=f"{size / 1024**2:.0f}",
                max_megabytes=limits.max_pixel_bytes // 1024**2,
            )
        )


def _native_layout_problem(ds) -> str | None:
    bits = _int(ds, "BitsAllocated")
    samples = _int(ds, "SamplesPerPixel") or 1
    if bits not in (1, 8, 16, 32, 64):
        return NOTE_BITS.format(bits=bits)
    if samples not in (1, 3):
        return NOTE_SAMPLES.format(samples=samples)
    if _int(ds, "PixelRepresentation") not in (None, 0, 1):
        return NOTE_PIXEL_REPRESENTATION
    if samples == 3 and not str(ds.get("PhotometricInterpretation", "")).upper().startswith(
        ("RGB", "YBR")
    ):
        return NOTE_COLOUR_MODEL
    return None


def decoder_problem(transfer_syntax: str) -> str | None:
    """Why no installed plugin decodes ``transfer_syntax``, or None when one does."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return NOTE_UNDECODABLE_SYNTAX.format(transfer_syntax=transfer_syntax)
    if not decoder.is_available:
        return NOTE_NO_PLUGIN.format(transfer_syntax=transfer_syntax)
    return None


def header_json(ds) -> dict[str, Any]:
    """The header as DICOM JSON, without bulk data (pixel data, overlays, large blobs)."""
    from telemed.imaging.dicom_json import dataset_json

    with _reading, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a malformed value is left out, not an error
        body = dataset_json(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        body["00020010"] = {"vr": "UI", "Value": [str(meta.TransferSyntaxUID)]}
    return body


def _date(value: str | None) -> str | None:
    if value and len(value) >= 8 and value[:8].isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    return None


def inspect(path: str, limits: Limits | None = None) -> dict[str, Any]:
    """Check one file and return its index entry; raises :class:`Refused`. Worker only."""
    path_obj = Path(path)
    notes = check_preamble(path_obj)
    # One pass over the file, large values deferred (not loaded): sizes are checked from
    # the header before any pixel is decoded, and a truncated file shows here.
    header = _read(path_obj, defer_size=DEFER_BYTES)
    return _index(header, limits or Limits(), notes, path_obj)


def _ends_data(data, end: int, implicit: bool) -> bool:
    """Whether nothing but an optional Data Set Trailing Padding element follows ``end``."""
    size = len(data)
    if end == size:
        return True
    head = bytes(data[end : end + 12])
    if not head.startswith(TRAILING_PADDING_TAG):
        return False
    if implicit:
        return end + 8 + int.from_bytes(head[4:8], "little") == size
    return head[4:8] == b"OB\x00\x00" and end + 12 + int.from_bytes(head[8:12], "little") == size


def _native_pixel_data_at_end(data) -> tuple[int, int, bool] | None:
    """Where a pixel data element that ends ``data`` (but for trailing padding) starts, its
    value's length, and whether it is in implicit VR; None when no such element starts in
    the header window. Only a candidate: the header before it must still parse to exactly
    that position."""
    window = min(len(data), HEADER_IN_PROCESS + PREAMBLE + 4)
    position = data.rfind(PIXEL_DATA_TAG, PREAMBLE + 4, window)
    while position != -1:
        head = bytes(data[position : position + 12])
        if head[4:6] in (b"OW", b"OB") and head[6:8] == b"\x00\x00":
            length = int.from_bytes(head[8:12], "little")
            if _ends_data(data, position + 12 + length, implicit=False):
                return position, length, False
        length = int.from_bytes(head[4:8], "little")
        if _ends_data(data, position + 8 + length, implicit=True):
            return position, length, True
        position = data.rfind(PIXEL_DATA_TAG, PREAMBLE + 4, position)
    return None


def may_inspect_native(data) -> bool:
    """Cheaply, whether ``inspect_native`` may read the file in process (a pixel data
    element ends it within the header window); it may still decline."""
    return _native_pixel_data_at_end(data) is not None


def _ends_at(header, position: int) -> bool:
    """Whether the last element read ends exactly at ``position`` (nothing cut short)."""
    if not header._dict:
        return False
    last = next(reversed(header._dict.values()))
    length, tell = getattr(last, "length", None), getattr(last, "value_tell", None)
    if type(last).__name__ == "RawDataElement" and length != 0xFFFFFFFF and tell is not None:
        return tell + length == position
    return False


def inspect_native(data, limits: Limits | None = None) -> dict[str, Any] | None:
    """Check one file held in memory without a worker, when that is safe and cheap (see the
    module's docstring). Raises :class:`Refused` for a file that is refused; returns None
    when the worker must read it."""
    notes = check_head(bytes(data[: PREAMBLE + 4]))
    found = _native_pixel_data_at_end(data)
    if found is None:
        return None
    position, length, implicit = found
    try:
        # The header alone, bounded: at most HEADER_IN_PROCESS bytes are parsed.
        header = _read(io.BytesIO(bytes(data[:position])))
    except Exception:  # Refused or anything odd: the worker gives the verdict on this header
        return None
    meta = getattr(header, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if IN_PROCESS_SYNTAXES.get(syntax) is not implicit or not _ends_at(header, position):
        return None
    with _reading, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in the worker: odd values are indexed, not errors
        return _index(header, limits or Limits(), notes, None, pixel_length=length)


def _index(
    header,
    limits: Limits,
    notes: list[str],
    path: Path | None,
    *,
    pixel_length: int | None = None,
) -> dict[str, Any]:
    """Check a header (and the pixel data it declares) and build the index entry. ``path``
    is the file (worker); in process, ``pixel_length`` is the proven length of the pixel
    data element that ends the file."""
    from pydicom.pixels import pixel_array

    # First, while every element is still raw: the JSON is then built from the raw bytes.
    body = header_json(header)
    meta = getattr(header, "file_meta", None)
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not transfer_syntax:
        raise Refused(REFUSED_NO_SYNTAX)
    uids = {}
    warnings: list[str] = []
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = str(header.get(keyword, "")).strip(" \x00")
        if not value or len(value) > 64:
            raise Refused(REFUSED_UID_LENGTH.format(keyword=keyword))
        if not UID.match(value):
            if not UID_AS_SENT.match(value):
                raise Refused(REFUSED_UID_CHARACTERS.format(keyword=keyword))
            # Real anonymisers write hashes (hex, UUIDs): unique, only off the grammar.
            warnings.append(NOTE_UID_GRAMMAR.format(keyword=keyword, value=value))
        uids[keyword] = value
    notes.extend(warnings)
    has_pixels = "Rows" in header and "Columns" in header
    if has_pixels:
        _check_size(header, limits)
    decodable = True
    if pixel_length is not None or "PixelData" in header:
        declared = declared_pixel_bytes(header)
        if transfer_syntax in NATIVE_SYNTAXES:
            if pixel_length is not None:
                stored, complete = pixel_length, True
            else:
                assert path is not None
                stored, complete = _native_pixel_length(header, path)
            if stored < declared or not complete:
                raise Refused(
                    REFUSED_PIXELS_SHORT.format(have=stored, declared=declared)
                    if complete
                    else REFUSED_PIXELS_CUT.format(declared=declared)
                )
        problem = decoder_problem(transfer_syntax)
        if problem is None and transfer_syntax in NATIVE_SYNTAXES:
            # Native data needs no codec: its length was checked; its layout is checked here
            # rather than by decoding (which would parse the whole file a second time).
            problem = _native_layout_problem(header)
        elif problem is None:
            assert path is not None  # compressed data is only ever read in the worker
            try:
                pixel_array(str(path), index=0)  # one frame: proves the codec, bounds memory
            except MemoryError:
                raise
            except Exception as error:  # any codec failure: stored but flagged
                problem = NOTE_DECODING_FAILED.format(detail=str(error).splitlines()[0][:160])
        if problem is not None:
            decodable = False
            notes.append(problem)
    elif has_pixels:
        decodable = False
        notes.append(NOTE_NO_PIXEL_DATA)
    else:
        decodable = False  # not an image (structured report, waveform...): nothing to render
    return {
        "study_uid": uids["StudyInstanceUID"],
        "series_uid": uids["SeriesInstanceUID"],
        "sop_instance_uid": uids["SOPInstanceUID"],
        "sop_class_uid": _text(header, "SOPClassUID", 64)
        or (str(meta.get("MediaStorageSOPClassUID", ""))[:64] or None),
        "modality": _text(header, "Modality", 16),
        "body_part": _text(header, "BodyPartExamined", 64),
        "study_date": _date(_text(header, "StudyDate", 16)),
        "study_time": _text(header, "StudyTime", 16),
        "study_description": _text(header, "StudyDescription"),
        "series_description": _text(header, "SeriesDescription"),
        "accession_number": _text(header, "AccessionNumber", 64),
        "series_number": _int(header, "SeriesNumber"),
        "instance_number": _int(header, "InstanceNumber"),
        "number_of_frames": max(_int(header, "NumberOfFrames") or 1, 1),
        "transfer_syntax_uid": transfer_syntax[:64],
        "rows": _int(header, "Rows"),
        "columns": _int(header, "Columns"),
        "photometric": _text(header, "PhotometricInterpretation", 32),
        "header_patient_name": _text(header, "PatientName"),
        "header_patient_id": _text(header, "PatientID", 64),
        "decodable": decodable,
        "notes": "; ".join(notes) or None,
        "header_json": body,
        "warnings": warnings,
    }
