"""The server's grayscale pipeline (PS3.4 N.2: modality LUT, VOI LUT, presentation) held
against pydicom's own apply_modality_lut and apply_voi_lut, on real files: a window the
file gives, a Modality LUT Sequence, a VOI LUT Sequence, MONOCHROME1."""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from telemed.imaging.rendering import RenderRequest, display_pixels
from tests import dicom_files


def windowed(values, ds) -> np.ndarray:
    """pydicom's VOI onto 0-1: a VOI LUT's output over 0 to 2^n - 1 (n its descriptor's
    third value), a window's over the output range pydicom gives it (found by windowing
    two values far outside any window)."""
    shown = apply_voi_lut(values, ds, index=0).astype(np.float64)
    if "VOILUTSequence" not in ds and "WindowCenter" not in ds:
        return (shown - shown.min()) / (shown.max() - shown.min())  # no VOI: the full range
    if "VOILUTSequence" in ds:
        return shown / (2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    low, high = apply_voi_lut(np.array([-1e12, 1e12]), ds, index=0).astype(np.float64)
    return (shown - low) / (high - low)


def reference(path) -> np.ndarray:
    """pydicom's pipeline onto 0-255, inverted for MONOCHROME1."""
    ds = pydicom.dcmread(path)
    scaled = windowed(apply_modality_lut(ds.pixel_array, ds), ds)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        scaled = 1 - scaled
    return scaled * 255


def test_lut_sequences_are_applied_as_pydicom_applies_them(tmp_path):
    made = dicom_files.with_lut_sequences(tmp_path)
    # pydicom's own: a signed 12-bit image through a Modality LUT (SS descriptor, first
    # value mapped -2048), an 8-bit one through a 16-bit VOI LUT.
    for name in ("mlut_18.dcm", "vlut_04.dcm"):
        made[name] = get_testdata_file(name)
    for name, path in made.items():
        pixels, applied = display_pixels(str(path), RenderRequest())
        expected = reference(path)
        assert np.abs(pixels - expected).max() <= 0.5 + 1e-9, name  # rounding alone
        assert pixels.max() - pixels.min() > 150, name  # a real image, not flat
        if name.endswith(".dcm"):
            continue  # pydicom's mlut_18 is a straight ramp: the same as a plain stretch
        # Without its LUT the same values, stretched over their range, look otherwise.
        raw = pydicom.dcmread(path).pixel_array.astype(np.float64)
        plain = (raw - raw.min()) / (raw.max() - raw.min()) * 255
        assert np.abs(pixels - plain).mean() > 10, name  # five times the viewer's bound
    _pixels, applied = display_pixels(str(made["vlut"]), RenderRequest())
    assert applied["window"] == "VOI LUT"
    _pixels, applied = display_pixels(str(made["mlut"]), RenderRequest())
    assert applied["window"] == [1800.0, 1600.0, "LINEAR"]
    assert applied["modality"] == "LUT"


def test_a_files_window_is_applied_as_given_not_stretched_to_the_frame():
    """RG3 (CR, MONOCHROME1, window 550/1024): its values do not reach the window's lower
    end, so a rendering that stretched the windowed frame to its own range would differ."""
    path = dicom_files.sample("RG3_J2KI.dcm")
    pixels, applied = display_pixels(str(path), RenderRequest())
    assert applied["window"] == [550.0, 1024.0, "LINEAR"]
    assert np.abs(pixels - reference(path)).max() <= 0.5 + 1e-9


def test_each_frame_takes_its_own_rescale_and_window_from_its_functional_groups(tmp_path):
    """Each frame against pydicom's pipeline on the same values with that frame's group
    put at the top level: its rescale, then its window."""
    path = dicom_files.with_frame_groups(tmp_path)
    ds = pydicom.dcmread(path)
    windows = set()
    for number, group in enumerate(ds.PerFrameFunctionalGroupsSequence):
        frame = pydicom.dcmread(path)
        del frame.PerFrameFunctionalGroupsSequence
        transform, voi = group.PixelValueTransformationSequence[0], group.FrameVOILUTSequence[0]
        rescale = (float(transform.RescaleSlope), float(transform.RescaleIntercept))
        frame.RescaleSlope, frame.RescaleIntercept = rescale
        frame.WindowCenter, frame.WindowWidth = voi.WindowCenter, voi.WindowWidth
        values = apply_modality_lut(ds.pixel_array[number], frame)
        expected = windowed(values, frame) * 255
        pixels, applied = display_pixels(str(path), RenderRequest(frame=number))
        assert np.abs(pixels - expected).max() <= 0.5 + 1e-9, number
        assert applied["rescale"] == rescale
        windows.add(tuple(applied["window"][:2]))
    assert len(windows) == 10  # each frame its own
