"""A stored file's pixel data as DICOMweb hands it out (PS3.18 8.7.3), and the whole file
in Explicit VR Little Endian. Runs in the limited worker.

Two forms of a frame exist. *Stored*: the bytes of the file's own syntax (one encapsulated
frame of a compressed file; for native data the same bytes as *native*). *Native*: the
uncompressed frame as Explicit VR Little Endian lays it out (big endian words swapped;
compressed frames decoded as pydicom decodes them, colour as ``Dataset.decompress`` leaves
it, so the frames and the transcoded file agree). A transcoded file keeps every UID: it is
the same instance in another syntax.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_BIG = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT = "1.2.840.10008.1.2.1.99"
# Syntaxes whose pixel data is native (not encapsulated).
NATIVE_SYNTAXES = {EXPLICIT_LITTLE, IMPLICIT_LITTLE, EXPLICIT_BIG, DEFLATED_EXPLICIT}


def _read(path: str):
    import pydicom

    return pydicom.dcmread(path)


def _native_frame_bytes(ds, pixels: np.ndarray) -> bytes:
    """One decoded frame laid out as Explicit VR Little Endian pixel data."""
    bits = int(ds.get("BitsAllocated") or 8)
    if bits == 1:
        return np.packbits(pixels.astype(np.uint8).ravel(), bitorder="little").tobytes()
    kind = "i" if int(ds.get("PixelRepresentation") or 0) == 1 else "u"
    if pixels.dtype.kind == "f":
        kind = "f"
    return np.ascontiguousarray(pixels).astype(f"<{kind}{bits // 8}", copy=False).tobytes()


def _swapped(ds, data: bytes) -> bytes:
    """Native pixel data of a big endian file in little endian order (OW words swapped)."""
    bits = int(ds.get("BitsAllocated") or 8)
    if bits <= 8:
        return data
    size = bits // 8
    usable = len(data) - len(data) % size
    return np.frombuffer(data[:usable], f">u{size}").astype(f"<u{size}").tobytes()


def _native_frames(ds, path: str):
    """Each frame's native bytes, one at a time (memory bounded by one frame)."""
    syntax = str(ds.file_meta.TransferSyntaxUID)
    frames = max(int(ds.get("NumberOfFrames") or 1), 1)
    bits = int(ds.get("BitsAllocated") or 8)
    if syntax in NATIVE_SYNTAXES and bits % 8 == 0:
        data = bytes(ds.PixelData)
        if syntax == EXPLICIT_BIG:
            data = _swapped(ds, data)
        rows, columns = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel") or 1)
        size = rows * columns * samples * bits // 8
        if str(ds.get("PhotometricInterpretation", "")).upper() == "YBR_FULL_422":
            size = size * 2 // 3  # two chroma samples shared by each pair of pixels
        for number in range(frames):
            yield data[number * size : (number + 1) * size]
        return
    from pydicom.pixels import iter_pixels

    for pixels in iter_pixels(path):
        yield _native_frame_bytes(ds, pixels)


def _stored_frames(ds):
    from pydicom.encaps import generate_frames

    frames = max(int(ds.get("NumberOfFrames") or 1), 1)
    yield from generate_frames(ds.PixelData, number_of_frames=frames)


def extract_frames(path: str, out_dir: str, form: str) -> dict[str, Any]:
    """Every frame of the file at ``path`` as files ``1``, ``2``... of ``out_dir``, in
    ``form`` ``stored`` or ``native``. Written under a temporary name and moved in whole,
    so a reader sees all the frames or none."""
    ds = _read(path)
    if "PixelData" not in ds:
        raise ValueError("the instance has no pixel data")
    syntax = str(ds.file_meta.TransferSyntaxUID)
    native = form == "native" or syntax in NATIVE_SYNTAXES
    temp = Path(f"{out_dir}.{os.getpid()}.part")
    temp.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        frames = _native_frames(ds, path) if native else _stored_frames(ds)
        for count, frame in enumerate(frames, start=1):
            (temp / str(count)).write_bytes(frame)
        try:
            os.replace(temp, out_dir)
        except OSError:
            if not Path(out_dir).is_dir():  # not a concurrent twin that got there first
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return {"frames": count, "syntax": EXPLICIT_LITTLE if native else syntax}


def transcode_to_explicit_little(path: str, out_path: str) -> None:
    """The same instance in Explicit VR Little Endian: compressed pixel data decoded, big
    endian words swapped, every UID kept (a change of syntax is not a new instance)."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = _read(path)
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax.is_encapsulated:
        ds.decompress(generate_instance_uid=False)
    else:
        if syntax == EXPLICIT_BIG and "PixelData" in ds:
            ds.PixelData = _swapped(ds, bytes(ds.PixelData))
            ds["PixelData"].VR = "OW" if int(ds.get("BitsAllocated") or 8) > 8 else "OB"
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.preamble = bytes(128)
    # force_encoding: the only way pydicom writes a big endian dataset as little endian.
    pydicom.dcmwrite(out_path, ds, implicit_vr=False, little_endian=True, force_encoding=True)


# Bytes per value of the binary VRs whose values are words (swapped out of big endian).
_WORD_SIZES = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def extract_element(path: str, tag: str, out_path: str) -> dict[str, Any]:
    """The value of one top-level bulk element (``tag`` as eight hex digits) as little
    endian bytes, written to ``out_path``."""
    import pydicom

    number = int(tag, 16)
    ds = pydicom.dcmread(path, specific_tags=[number])
    if number not in ds or number >> 16 == 0x7FE0:
        raise ValueError(f"no bulk data {tag}")
    element = ds[number]
    value = element.value
    if not isinstance(value, bytes | bytearray):
        raise ValueError(f"{tag} is not bulk data")
    size = _WORD_SIZES.get(str(element.VR))
    if size and not ds.is_little_endian:
        usable = len(value) - len(value) % size
        value = np.frombuffer(value[:usable], f">u{size}").astype(f"<u{size}").tobytes()
    temp = f"{out_path}.{os.getpid()}.part"
    with open(temp, "wb") as handle:
        handle.write(value)
    os.replace(temp, out_path)
    return {"bytes": len(value)}
