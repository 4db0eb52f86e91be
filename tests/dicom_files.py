"""DICOM files for tests: the real samples in tests/data/dicom, and files built from them
(a CT series with new UIDs, hostile variants) when a test needs a particular defect."""

from __future__ import annotations

import copy
import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

DATA = Path(__file__).parent / "data" / "dicom"


def sample(name: str) -> Path:
    return DATA / name


def ct_series(
    folder: Path,
    count: int = 5,
    *,
    patient_name: str = "Zhang^San",
    patient_id: str = "110105194912310021",  # Zhang San's in tests/factories.py
) -> list[Path]:
    """``count`` CT slices made from CT_small.dcm: one new study and series, new SOP
    instance UIDs, slice positions 1 mm apart and pixel data that differs per slice."""
    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(sample("CT_small.dcm"))
    study, series = generate_uid(), generate_uid()
    pixels = base.pixel_array.astype(np.int16)
    paths = []
    for number in range(1, count + 1):
        ds = copy.deepcopy(base)  # file_meta too: each file names its own instance
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        ds.SeriesNumber = 1
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.ImagePositionPatient = [0, 0, float(number)]
        ds.SliceLocation = float(number)
        ds.PixelData = (pixels + (number * 7) % 200).astype(np.int16).tobytes()
        path = folder / f"ct_{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def with_preamble(source: Path, target: Path, preamble: bytes) -> Path:
    data = bytearray(source.read_bytes())
    data[: len(preamble)] = preamble
    target.write_bytes(bytes(data))
    return target


def executable_preamble(target: Path) -> Path:
    """A DICOM file whose preamble is a Windows executable's header (MZ ... PE)."""
    header = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(46) + b"\x80\x00\x00\x00"
    header += bytes(128 - len(header))
    return with_preamble(sample("MR_small.dcm"), target, header[:128])


def huge_header(target: Path) -> Path:
    """A header claiming 60000 × 60000 pixels (with a small pixel data element)."""
    ds = pydicom.dcmread(sample("MR_small.dcm"))
    ds.Rows, ds.Columns = 60000, 60000
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(target, enforce_file_format=True)
    return target


def short_pixels(target: Path) -> Path:
    """Pixel data shorter than Rows × Columns × bits declares."""
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(target, enforce_file_format=True)
    return target


def zip_of(target: Path, entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
        for name, points_to in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, points_to)
    return target


def zip_bomb(target: Path, inflated_bytes: int = 300 * 1024**2) -> Path:
    """One entry of zeros that deflates ~1000:1."""
    with (
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle,
        bundle.open("bomb.dcm", "w", force_zip64=True) as entry,
    ):
        block = bytes(1024**2)
        for _ in range(inflated_bytes // len(block)):
            entry.write(block)
    return target


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def dataset_bytes(ds) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
