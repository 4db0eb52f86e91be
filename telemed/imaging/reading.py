"""Reading one DICOM file: refuse what is hostile or broken, index what is sound.

Runs inside the limited worker process (worker.py): a file that makes pydicom or a codec
misbehave costs that process, never the server. Every refusal is a :class:`Refused` whose
message says what is wrong with the file, in words a user can act on.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREAMBLE = 128
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
# Preambles that make the file something else too (CVE-2019-11687). A TIFF header is a
# documented dual-personality use (PS3.10 7.5) and is accepted with the preamble zeroed on
# storage; an executable is a polyglot attack and is refused.
EXECUTABLE_PREAMBLES = {b"MZ": "a Windows executable (MZ)", b"\x7fELF": "an ELF executable"}
TIFF_PREAMBLES = (b"II*\x00", b"MM\x00*")
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
}


DEFER_BYTES = 64 * 1024


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
        head = handle.read(PREAMBLE + 4)
    if len(head) < PREAMBLE + 4 or head[PREAMBLE:] != b"DICM":
        raise Refused("not a DICOM file (no 'DICM' marker after a 128-byte preamble)")
    preamble = head[:PREAMBLE]
    for magic, what in EXECUTABLE_PREAMBLES.items():
        if preamble.startswith(magic):
            raise Refused(f"the DICOM preamble holds {what}; refused as a polyglot file")
    if preamble.startswith(b"#!"):
        raise Refused("the DICOM preamble holds a script (#!); refused as a polyglot file")
    if preamble.startswith(TIFF_PREAMBLES):
        return ["the preamble held a TIFF header; it was zeroed when stored"]
    return []


def _read(path: Path, **kwargs):
    import pydicom
    from pydicom.errors import InvalidDicomError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, **kwargs)
        except InvalidDicomError as error:
            raise Refused(f"not a DICOM file ({error})") from None
        except (EOFError, OSError) as error:
            raise Refused(f"truncated DICOM file ({error})") from None
        except (ValueError, KeyError, TypeError, NotImplementedError) as error:
            raise Refused(f"unreadable DICOM header ({error})") from None
    for warning in caught:
        text = str(warning.message)
        if "End of file" in text or "delimiter" in text or "truncat" in text.lower():
            raise Refused(f"truncated DICOM file ({text.splitlines()[0][:160]})")
    if len(ds) == 0:
        raise Refused("truncated or empty DICOM file (no data elements could be read)")
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
        raise Refused(f"the header declares {frames} frames; at most {limits.max_frames} allowed")
    size = declared_pixel_bytes(ds)
    if size > limits.max_pixel_bytes:
        raise Refused(
            f"the header declares {columns}×{rows} pixels × {frames} frame(s) "
            f"({size / 1024**2:.0f} MB decoded), over the {limits.max_pixel_bytes // 1024**2} MB "
            "limit; refused before decoding"
        )


def _native_layout_problem(ds) -> str | None:
    bits = _int(ds, "BitsAllocated")
    samples = _int(ds, "SamplesPerPixel") or 1
    if bits not in (1, 8, 16, 32, 64):
        return f"Bits Allocated {bits} cannot be displayed"
    if samples not in (1, 3):
        return f"Samples per Pixel {samples} cannot be displayed"
    if _int(ds, "PixelRepresentation") not in (None, 0, 1):
        return "Pixel Representation must be 0 or 1"
    if samples == 3 and not str(ds.get("PhotometricInterpretation", "")).upper().startswith(
        ("RGB", "YBR")
    ):
        return "three samples per pixel need an RGB or YBR photometric interpretation"
    return None


def decoder_problem(transfer_syntax: str) -> str | None:
    """Why no installed plugin decodes ``transfer_syntax``, or None when one does."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return f"transfer syntax {transfer_syntax} cannot be decoded here"
    if not decoder.is_available:
        return f"no installed plugin decodes transfer syntax {transfer_syntax}"
    return None


def header_json(ds) -> dict[str, Any]:
    """The header as DICOM JSON, without bulk data (pixel data, overlays, large blobs)."""

    def drop(_element) -> str:
        return ""

    header = ds  # the caller's dataset: pixel and overlay data are dropped from it
    tags = list(header.keys())  # iterating a Dataset itself yields elements, not tags
    for tag in [t for t in tags if t.group == 0x7FE0 or (t.group & 0xFF00) == 0x6000]:
        del header[tag]
    try:
        body = header.to_json_dict(bulk_data_threshold=8192, bulk_data_element_handler=drop)
    except (TypeError, ValueError):
        # A malformed value somewhere: keep what serialises, element by element.
        body = {}
        for element in header:
            try:
                body.update(
                    _single(element, bulk_data_threshold=8192, bulk_data_element_handler=drop)
                )
            except (TypeError, ValueError):
                continue
    for key in [k for k, v in body.items() if v.get("BulkDataURI") == ""]:
        del body[key]
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        body["00020010"] = {"vr": "UI", "Value": [str(meta.TransferSyntaxUID)]}
    return body


def _single(element, **kwargs) -> dict[str, Any]:
    from pydicom.dataset import Dataset

    one = Dataset()
    one.add(element)
    return one.to_json_dict(**kwargs)


def _date(value: str | None) -> str | None:
    if value and len(value) >= 8 and value[:8].isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    return None


def inspect(path: str, limits: Limits | None = None) -> dict[str, Any]:
    """Check one file and return its index entry; raises :class:`Refused`."""
    from pydicom.pixels import pixel_array

    limits = limits or Limits()
    path_obj = Path(path)
    notes = check_preamble(path_obj)
    # One pass over the file, large values deferred (not loaded): sizes are checked from
    # the header before any pixel is decoded, and a truncated file shows here.
    header = full = _read(path_obj, defer_size=DEFER_BYTES)
    meta = getattr(header, "file_meta", None)
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not transfer_syntax:
        raise Refused("the file meta information has no Transfer Syntax UID")
    uids = {}
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = str(header.get(keyword, "")).strip()
        if not value or len(value) > 64 or not UID.match(value):
            raise Refused(f"{keyword} is missing or not a valid UID")
        uids[keyword] = value
    has_pixels = "Rows" in header and "Columns" in header
    if has_pixels:
        _check_size(header, limits)
    decodable = True
    if "PixelData" in full:
        declared = declared_pixel_bytes(full)
        if transfer_syntax in NATIVE_SYNTAXES:
            stored, complete = _native_pixel_length(full, path_obj)
            if stored < declared or not complete:
                have = stored if complete else "fewer"
                raise Refused(
                    f"pixel data is shorter than declared ({have} of {declared} bytes): "
                    "truncated or corrupt"
                )
        problem = decoder_problem(transfer_syntax)
        if problem is None and transfer_syntax in NATIVE_SYNTAXES:
            # Native data needs no codec: its length was checked; its layout is checked here
            # rather than by decoding (which would parse the whole file a second time).
            problem = _native_layout_problem(full)
        elif problem is None:
            try:
                pixel_array(path, index=0)  # one frame: proves the codec, bounds memory
            except MemoryError:
                raise
            except Exception as error:  # any codec failure: stored but flagged
                problem = f"pixel data could not be decoded ({str(error).splitlines()[0][:160]})"
        if problem is not None:
            decodable = False
            notes.append(problem)
    elif has_pixels:
        decodable = False
        notes.append("the header declares an image but the file has no pixel data")
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
        "header_json": header_json(header),
    }
