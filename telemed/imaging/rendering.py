"""Turning a frame into pixels a screen can show.

Runs in the limited worker. Respects the modality LUT (rescale slope/intercept), VOI
windows and VOI LUTs (or the caller's window), MONOCHROME1, RGB, YBR (decoders convert
to RGB), palette colour, and multi-frame files (one frame is decoded, not all).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "LINEAR"


@dataclass(frozen=True)
class RenderRequest:
    frame: int = 0  # zero-based
    media_type: str = "image/png"
    window: Window | None = None
    quality: int = 90
    viewport: tuple[int, int] | None = None  # (width, height) to fit inside


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2: LINEAR, LINEAR_EXACT and SIGMOID onto 0..1."""
    center, width = window.center, max(window.width, 1.0)
    x = values.astype(np.float64)
    function = window.function.upper()
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if width <= 1:
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _frame_voi(ds, frame: int) -> Window | None:
    """The window of an enhanced multi-frame file (per-frame, else shared groups)."""
    for groups_keyword in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        groups = ds.get(groups_keyword)
        if not groups:
            continue
        group = groups[min(frame, len(groups) - 1)] if "PerFrame" in groups_keyword else groups[0]
        voi = group.get("FrameVOILUTSequence")
        if voi and "WindowCenter" in voi[0] and "WindowWidth" in voi[0]:
            center, width = voi[0].WindowCenter, voi[0].WindowWidth
            center = center[0] if hasattr(center, "__len__") else center
            width = width[0] if hasattr(width, "__len__") else width
            return Window(float(center), float(width), str(voi[0].get("VOILUTFunction", "LINEAR")))
    return None


def _file_window(ds) -> Window | None:
    """The file's first window (PS3.3 C.11.2.1.2), with its VOI LUT Function."""
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    center, width = ds.WindowCenter, ds.WindowWidth
    center = center[0] if hasattr(center, "__len__") else center
    width = width[0] if hasattr(width, "__len__") else width
    if center is None or width is None or float(width) <= 0:
        return None
    return Window(float(center), float(width), str(ds.get("VOILUTFunction") or "LINEAR"))


def _frame_rescale(ds, frame: int) -> tuple[float, float] | None:
    for groups_keyword in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        groups = ds.get(groups_keyword)
        if not groups:
            continue
        group = groups[min(frame, len(groups) - 1)] if "PerFrame" in groups_keyword else groups[0]
        seq = group.get("PixelValueTransformationSequence")
        if seq and "RescaleSlope" in seq[0]:
            return float(seq[0].RescaleSlope), float(seq[0].get("RescaleIntercept", 0))
    return None


def display_pixels(path: str, request: RenderRequest) -> tuple[np.ndarray, dict[str, Any]]:
    """One frame as uint8 (H×W grey or H×W×3 RGB), with what was applied."""
    import pydicom
    from pydicom.pixels import pixel_array
    from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    frames = max(int(ds.get("NumberOfFrames") or 1), 1)
    if not 0 <= request.frame < frames:
        raise IndexError(f"frame {request.frame + 1} does not exist (the file has {frames})")
    pixels = pixel_array(path, index=request.frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    applied: dict[str, Any] = {"photometric": photometric}
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, ds)
        if rgb.dtype != np.uint8:  # 16-bit palette entries
            rgb = (rgb / 257).astype(np.uint8) if rgb.max() > 255 else rgb.astype(np.uint8)
        return rgb, applied
    if pixels.ndim == 3:  # RGB (YBR already converted by pydicom's decoders)
        if pixels.dtype != np.uint8:
            bits = int(ds.get("BitsStored") or 8)
            pixels = (pixels.astype(np.float64) / (2**bits - 1) * 255).astype(np.uint8)
        return pixels, applied
    rescale = _frame_rescale(ds, request.frame)
    if rescale is not None:
        values = pixels.astype(np.float64) * rescale[0] + rescale[1]
    else:
        values = apply_modality_lut(pixels, ds)
    if rescale is None and "ModalityLUTSequence" in ds:
        applied["modality"] = "LUT"
    else:
        applied["rescale"] = rescale or (
            float(ds.get("RescaleSlope", 1) or 1),
            float(ds.get("RescaleIntercept", 0) or 0),
        )
    window = request.window or _frame_voi(ds, request.frame)
    if window is None and "VOILUTSequence" in ds:
        # PS3.3 C.11.2.1.1: the LUT's output spans 0 to 2^n - 1 (n its descriptor's third
        # value); that range is the display's, not the frame's own lowest to highest.
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        voi = apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float64)
        scaled = np.clip(voi / (2**bits - 1), 0.0, 1.0)
        applied["window"] = "VOI LUT"
    else:
        window = window or _file_window(ds)
        if window is not None:
            scaled = apply_window(values, window)
            applied["window"] = [window.center, window.width, window.function]
        else:
            low, high = float(values.min()), float(values.max())
            scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
            applied["window"] = "min-max"
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled
    return np.round(scaled * 255).astype(np.uint8), applied


def encode(pixels: np.ndarray, request: RenderRequest) -> bytes:
    from PIL import Image

    image = Image.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L")
    if request.viewport:
        width, height = request.viewport
        image.thumbnail((max(width, 1), max(height, 1)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if request.media_type == "image/jpeg":
        image.save(out, "JPEG", quality=max(1, min(request.quality, 100)))
    elif request.media_type == "image/gif":
        image.save(out, "GIF")
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def render(path: str, request: RenderRequest) -> bytes:
    pixels, _applied = display_pixels(path, request)
    return encode(pixels, request)


def parse_window(raw: str | None) -> Window | None:
    """``center,width[,function]`` as in WADO-RS rendered's ``window`` parameter."""
    if not raw:
        return None
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) not in (2, 3):
        raise ValueError("window must be center,width[,function]")
    center, width = float(parts[0]), float(parts[1])
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ValueError("window width must be a positive number")
    function = (parts[2] if len(parts) == 3 else "linear").upper().replace("-", "_")
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        raise ValueError("window function must be linear, linear-exact or sigmoid")
    return Window(center, width, function)
