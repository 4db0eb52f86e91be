"""WFDB records: a ``.hea`` header and the ``.dat`` signal file(s) it names.

Reads the single-segment formats ECG archives use (212, 16, 61, 80, 160, 24, 32) with
numpy, after checking every size the header claims against the files and the limits.
Header fields: https://physionet.org/physiotools/wag/header-5.htm
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers._checks import check_sampling_rate, check_shape, checked_size
from telemed.ecg.signal import EcgLimits, EcgSignal, build_signal

MAX_HEADER_BYTES = 256 * 1024
DEFAULT_GAIN = 200.0
DEFAULT_SAMPLING_RATE = 250.0

# bytes per sample (212 packs two samples into three bytes) and the invalid-sample marker
_FORMATS: dict[int, tuple[float, int]] = {
    212: (1.5, -2048),
    16: (2, -32768),
    61: (2, -32768),
    80: (1, -128),
    160: (2, -32768),
    24: (3, -(2**23)),
    32: (4, -(2**31)),
}
_UNITS_TO_MICROVOLT = {"mv": 1000.0, "uv": 1.0, "µv": 1.0, "μv": 1.0, "v": 1_000_000.0, "nv": 0.001}

_SIGNAL_FORMAT = re.compile(r"^(\d+)(?:x(\d+))?(?::(-?\d+))?(?:\+(\d+))?$")
_GAIN = re.compile(r"^([-+]?[\d.eE+-]+?)(?:\((-?\d+)\))?(?:/(\S+))?$")


@dataclass
class _SignalSpec:
    file_name: str
    fmt: int
    byte_offset: int
    gain: float
    baseline: int
    units: str
    adc_zero: int
    initial_value: int | None
    checksum: int | None
    description: str


@dataclass
class _Header:
    record: str
    sampling_rate: float
    sample_count: int | None
    signals: list[_SignalSpec]
    comments: list[str]


def _int(name: str, text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise EcgFileError(
            name, _("header: %(what)s %(value)r is not a whole number", what=what, value=text)
        ) from None


def parse_header(name: str, text: str) -> _Header:
    lines: list[str] = []
    comments: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        lines.append(line.split("#", 1)[0].strip())
    if not lines:
        raise EcgFileError(name, _("header: no record line"))

    record_fields = lines[0].split()
    if len(record_fields) < 2:
        raise EcgFileError(name, _("header: the record line needs a name and a signal count"))
    record = record_fields[0]
    if "/" in record:
        raise EcgFileError(name, _("multi-segment WFDB records are not supported"))
    signal_count = _int(name, record_fields[1], "signal count")
    sampling_rate = DEFAULT_SAMPLING_RATE
    if len(record_fields) > 2:
        rate_text = record_fields[2].split("/", 1)[0]
        try:
            sampling_rate = float(rate_text)
        except ValueError:
            raise EcgFileError(
                name, _("header: sampling rate %(value)r is not a number", value=rate_text)
            ) from None
    sample_count = _int(name, record_fields[3], "sample count") if len(record_fields) > 3 else None
    if sample_count is not None and sample_count < 0:
        raise EcgFileError(name, _("header: negative sample count"))
    if signal_count < 1:
        raise EcgFileError(name, _("the recording has no leads"))
    if len(lines) - 1 < signal_count:
        raise EcgFileError(
            name,
            _(
                "header: %(claimed)d signals declared but %(found)d signal lines found",
                claimed=signal_count,
                found=len(lines) - 1,
            ),
        )
    signals = [_parse_signal_line(name, line) for line in lines[1 : 1 + signal_count]]
    return _Header(record, sampling_rate, sample_count, signals, comments)


def _parse_signal_line(name: str, line: str) -> _SignalSpec:
    fields = line.split(maxsplit=8)
    if len(fields) < 2:
        raise EcgFileError(name, _("header: signal line %(line)r has no format", line=line))
    file_name = fields[0]
    match = _SIGNAL_FORMAT.match(fields[1])
    if not match:
        raise EcgFileError(
            name, _("header: signal format %(value)r is not understood", value=fields[1])
        )
    fmt = int(match.group(1))
    if fmt not in _FORMATS:
        raise EcgFileError(name, _("WFDB signal format %(fmt)d is not supported", fmt=fmt))
    if match.group(2) not in (None, "1"):
        raise EcgFileError(name, _("WFDB records with several samples per frame are not supported"))
    byte_offset = int(match.group(4) or 0)

    gain, baseline, units = DEFAULT_GAIN, None, "mV"
    if len(fields) > 2:
        gain_match = _GAIN.match(fields[2])
        if not gain_match:
            raise EcgFileError(name, _("header: gain %(value)r is not understood", value=fields[2]))
        try:
            gain = float(gain_match.group(1))
        except ValueError:
            raise EcgFileError(
                name, _("header: gain %(value)r is not a number", value=fields[2])
            ) from None
        if gain_match.group(2) is not None:
            baseline = int(gain_match.group(2))
        units = gain_match.group(3) or units
        if gain == 0:
            gain = DEFAULT_GAIN
    if not math.isfinite(gain) or gain < 0:
        raise EcgFileError(name, _("header: gain %(value)r is not usable", value=fields[2]))
    adc_zero = _int(name, fields[4], "ADC zero") if len(fields) > 4 else 0
    initial = _int(name, fields[5], "initial value") if len(fields) > 5 else None
    checksum = _int(name, fields[6], "checksum") if len(fields) > 6 else None
    description = fields[8] if len(fields) > 8 else ""
    return _SignalSpec(
        file_name=file_name,
        fmt=fmt,
        byte_offset=byte_offset,
        gain=gain,
        baseline=adc_zero if baseline is None else baseline,
        units=units,
        adc_zero=adc_zero,
        initial_value=initial,
        checksum=checksum,
        description=description,
    )


def _decode(raw: np.ndarray, fmt: int, count: int) -> np.ndarray:
    """Samples (int32) from the raw bytes of one signal file, ``count`` of them."""
    if fmt == 212:
        pairs = raw[: (count + 1) // 2 * 3].reshape(-1, 3).astype(np.int32)
        out = np.empty(pairs.shape[0] * 2, dtype=np.int32)
        out[0::2] = pairs[:, 0] | ((pairs[:, 1] & 0x0F) << 8)
        out[1::2] = pairs[:, 2] | ((pairs[:, 1] & 0xF0) << 4)
        out = out[:count]
        out[out > 2047] -= 4096
        return out
    if fmt == 16:
        return raw[: count * 2].view("<i2").astype(np.int32)
    if fmt == 61:
        return raw[: count * 2].view(">i2").astype(np.int32)
    if fmt == 80:
        return raw[:count].astype(np.int32) - 128
    if fmt == 160:
        return raw[: count * 2].view("<u2").astype(np.int32) - 32768
    if fmt == 24:
        b = raw[: count * 3].reshape(-1, 3).astype(np.int32)
        out = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        out[out >= 2**23] -= 2**24
        return out
    return raw[: count * 4].view("<i4").astype(np.int32)


def read_wfdb(
    header: tuple[str, Path], data_files: dict[str, Path], limits: EcgLimits
) -> EcgSignal:
    """Read the record whose header is ``header``; ``data_files`` maps upload names to paths."""
    header_name, header_path = header
    size = checked_size(header_name, header_path, limits)
    if size > MAX_HEADER_BYTES:
        raise EcgFileError(
            header_name, _("a WFDB header of %(size)d bytes is not plausible", size=size)
        )
    try:
        text = header_path.read_text(encoding="latin-1")
    except OSError:
        raise EcgFileError(header_name, _("the file is missing or unreadable")) from None
    parsed = parse_header(header_name, text)
    rate = check_sampling_rate(header_name, parsed.sampling_rate, limits)

    # Signals are stored frame by frame, interleaved, per file.
    by_file: dict[str, list[int]] = {}
    for index, spec in enumerate(parsed.signals):
        if spec.file_name == "~":
            raise EcgFileError(header_name, _("signals without a data file are not supported"))
        by_file.setdefault(spec.file_name, []).append(index)

    sample_count = parsed.sample_count
    layouts: dict[str, tuple[Path, int, float]] = {}
    for file_name, indexes in by_file.items():
        specs = [parsed.signals[i] for i in indexes]
        if len({(s.fmt, s.byte_offset) for s in specs}) != 1:
            raise EcgFileError(
                header_name, _("signals in %(file)s differ in format", file=file_name)
            )
        path = data_files.get(file_name) or data_files.get(Path(file_name).name)
        if path is None:
            raise EcgFileError(
                file_name, _("the data file named by %(header)s was not sent", header=header_name)
            )
        data_size = checked_size(file_name, path, limits)
        bytes_per_sample = _FORMATS[specs[0].fmt][0]
        available = max(0, data_size - specs[0].byte_offset)
        frames_available = int(available // (bytes_per_sample * len(specs)))
        if sample_count in (None, 0):
            sample_count = frames_available
        layouts[file_name] = (path, len(specs), bytes_per_sample)

    assert sample_count is not None
    check_shape(header_name, len(parsed.signals), sample_count, limits)

    values: dict[int, np.ndarray] = {}
    for file_name, indexes in by_file.items():
        path, width, bytes_per_sample = layouts[file_name]
        spec0 = parsed.signals[indexes[0]]
        needed = math.ceil(sample_count * width * bytes_per_sample)
        data_size = path.stat().st_size - spec0.byte_offset
        if data_size < needed:
            raise EcgFileError(
                file_name,
                _(
                    "the data file holds %(have)d bytes but the header declares %(need)d "
                    "(%(samples)d samples × %(signals)d signals, format %(fmt)d)",
                    have=max(0, data_size),
                    need=needed,
                    samples=sample_count,
                    signals=width,
                    fmt=spec0.fmt,
                ),
            )
        raw = np.fromfile(path, dtype=np.uint8, count=needed, offset=spec0.byte_offset)
        frames = _decode(raw, spec0.fmt, sample_count * width).reshape(sample_count, width)
        for column, index in enumerate(indexes):
            values[index] = frames[:, column]

    warnings: list[str] = []
    channels: list[tuple[str, np.ndarray]] = []
    for index, spec in enumerate(parsed.signals):
        label = spec.description or f"signal {index + 1}"
        factor = _UNITS_TO_MICROVOLT.get(spec.units.lower())
        if factor is None:
            warnings.append(
                _(
                    "%(lead)s skipped: its unit %(unit)s is not a voltage",
                    lead=label,
                    unit=spec.units,
                )
            )
            continue
        adu = values[index]
        if spec.checksum is not None and parsed.sample_count:
            total = int(adu.sum(dtype=np.int64))
            checksum = ((total + 32768) % 65536) - 32768
            if checksum != spec.checksum:
                warnings.append(_("%(lead)s: checksum does not match the header", lead=label))
        invalid = adu == _FORMATS[spec.fmt][1]
        microvolts = (adu - spec.baseline).astype(np.float32) * np.float32(factor / spec.gain)
        if invalid.any():
            microvolts[invalid] = 0.0
            warnings.append(
                _(
                    "%(lead)s: %(count)d invalid samples shown as 0",
                    lead=label,
                    count=int(invalid.sum()),
                )
            )
        channels.append((label, microvolts))
    if not channels:
        raise EcgFileError(header_name, _("the record has no voltage signals"))
    gains = sorted({f"{spec.gain:g} adu/{spec.units}" for spec in parsed.signals})
    formats = sorted({str(spec.fmt) for spec in parsed.signals})
    acquisition = {
        "stored_units": ", ".join(gains),
        "compression": f"WFDB format {', '.join(formats)}",
        "signal_files": ", ".join(by_file),
    }
    return build_signal(channels, rate, "wfdb", warnings=warnings, acquisition=acquisition)


def signal_files_named(header_text: str) -> list[str] | None:
    """The signal files a header names, in order (``.dat``, ``.xyz``, ...), or None when
    the header cannot be parsed (the reader then says why)."""
    try:
        parsed = parse_header("header", header_text)
    except EcgFileError:
        return None
    names: list[str] = []
    for spec in parsed.signals:
        if spec.file_name != "~" and spec.file_name not in names:
            names.append(spec.file_name)
    return names
