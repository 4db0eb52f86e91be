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


def with_lut_sequences(folder: Path) -> dict[str, Path]:
    """Two files made from MR_small.dcm (12-bit unsigned values 127-2145): ``mlut`` with a
    Modality LUT Sequence (a logarithmic curve onto 0-3000, no rescale) and a window in
    its output's units; ``vlut`` with a VOI LUT Sequence (a gamma curve onto 16 bits
    starting at the first stored value 100) and no window. New study, series and
    instances, so both can be stored in one case."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    made = {}
    for name in ("mlut", "vlut"):
        ds = pydicom.dcmread(sample("MR_small.dcm"))
        pixels = ds.pixel_array.astype(np.uint16)
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
        ds.PixelData = pixels.tobytes()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesDescription = f"{name} sequence"
        for keyword in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
            if keyword in ds:
                delattr(ds, keyword)
        item = Dataset()
        if name == "mlut":
            steps = np.arange(4096, dtype=np.float64)
            item.LUTDescriptor = [4096, 0, 16]
            item.ModalityLUTType = "US"
            item.LUTData = np.round(3000 * np.log1p(steps / 300) / np.log1p(4095 / 300))
            item.LUTData = [int(v) for v in item.LUTData]
            ds.ModalityLUTSequence = Sequence([item])
            ds.WindowCenter, ds.WindowWidth = 1800, 1600
        else:
            steps = np.arange(2100, dtype=np.float64)
            item.LUTDescriptor = [2100, 100, 16]
            item.LUTData = [int(v) for v in np.round(65535 * (steps / 2099) ** 0.6)]
            ds.VOILUTSequence = Sequence([item])
        item["LUTData"].VR = "US"
        path = folder / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        made[name] = path
    return made


def with_frame_groups(folder: Path) -> Path:
    """emri_small.dcm (10 frames, 12-bit) with per-frame functional groups as an enhanced
    multi-frame file has them: each frame its own rescale (Pixel Value Transformation:
    slope 1 + frame / 4, intercept -100 * frame) and its own window (Frame VOI LUT), none
    at the top level. New study, series and instance."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    folder.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(sample("emri_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesDescription = "per-frame groups"
    for keyword in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
        if keyword in ds:
            delattr(ds, keyword)
    frames = ds.pixel_array
    groups = []
    for number in range(int(ds.NumberOfFrames)):
        slope, intercept = 1 + number / 4, -100.0 * number
        values = frames[number] * slope + intercept
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept = slope, intercept
        transform.RescaleType = "US"
        voi = Dataset()
        # A window over the middle of the frame's values, narrower each frame.
        low, high = float(values.min()), float(values.max())
        voi.WindowCenter = round((low + high) / 2, 2)
        voi.WindowWidth = round((high - low) * (0.9 - number * 0.05), 2)
        group = Dataset()
        group.PixelValueTransformationSequence = Sequence([transform])
        group.FrameVOILUTSequence = Sequence([voi])
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    path = folder / "frame_groups.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path
