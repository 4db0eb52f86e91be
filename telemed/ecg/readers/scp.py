"""SCP-ECG (EN 1064 / ISO 11073-91064), versions 1.x to 3.0.

Sections read: 0 (pointers), 1 (patient and filters), 2 (Huffman tables: the default
table or the file's own), 3 (leads), 4 (QRS locations and protected zones), 5 (reference
beats), 6 (rhythm, or residual after reference-beat subtraction), 7 (global
measurements), 8 and 11 (interpretive statements), 10 (per-lead measurements).

Decoding a lead: Huffman (or plain 16-bit samples without section 2) → undo first or
second differences → restore full rate where the residual was decimated outside the
protected zones (linear interpolation between kept samples) → add the reference beat
back around each QRS of type 0. Every CRC is checked: a file that fails one is damaged.
The reader is ours rather than ``ecgdatakit``'s (PyPI, Apache-2.0), which refuses
decimated (bimodal) data and the real cart exports whose section 3 and section 6 disagree;
the tests compare the two on everything both read.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers._checks import check_sampling_rate, check_shape, checked_size
from telemed.ecg.readers.device_values import plausible_device_values
from telemed.ecg.signal import DeviceReport, EcgLimits, EcgSignal, PatientIdentifiers, build_signal

MAGIC = b"SCPECG"
DEFAULT_TABLE_MARK = 19999
NOT_MEASURED = 29999
_SECTION_HEADER = 16

# Table 14 of EN 1064: lead identification codes
LEAD_CODES = {
    1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6", 9: "V7",
    10: "V2R", 11: "V3R", 12: "V4R", 13: "V5R", 14: "V6R", 15: "V7R", 16: "X", 17: "Y",
    18: "Z", 19: "CC5", 20: "CM5", 21: "LA", 22: "RA", 23: "LL", 61: "III", 62: "aVR",
    63: "aVL", 64: "aVF", 65: "-aVR", 66: "V8", 67: "V9", 68: "V8R", 69: "V9R",
}  # fmt: skip


@dataclass(frozen=True)
class HuffmanCode:
    prefix_bits: int
    total_bits: int
    mode: int  # 1: a value follows or is the base value; 0: switch to table ``base_value``
    base_value: int
    code: int  # the prefix, most significant bit first

    @property
    def key(self) -> tuple[int, int]:
        return self.prefix_bits, self.code


def _bits(value: int, width: int) -> int:
    return int(f"{value:0{width}b}"[::-1], 2) if width else 0


def default_table() -> list[HuffmanCode]:
    """Annex C's default table: 0 is "0"; ±m (m = 1..8) is m ones, a 0 and the sign bit;
    "1111111110" and "1111111111" are followed by an 8- and a 16-bit value."""
    codes = [HuffmanCode(1, 1, 1, 0, 0)]
    for magnitude in range(1, 9):
        width = magnitude + 2
        stem = ((1 << magnitude) - 1) << 2
        codes.append(HuffmanCode(width, width, 1, magnitude, stem))
        codes.append(HuffmanCode(width, width, 1, -magnitude, stem | 1))
    codes.append(HuffmanCode(10, 18, 1, 0, 0b1111111110))
    codes.append(HuffmanCode(10, 26, 1, 0, 0b1111111111))
    return codes


class _Reader:
    """Little-endian fields of one section's body, refusing reads past its end."""

    def __init__(self, name: str, data: bytes, section: int) -> None:
        self.name, self.data, self.section, self.at = name, data, section, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.at + size > len(self.data):
            raise EcgFileError(
                self.name,
                _("SCP-ECG: section %(section)d ends too early", section=self.section),
            )
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += size
        return values

    def one(self, fmt: str) -> int:
        return self.take(fmt)[0]

    def rest(self) -> int:
        return len(self.data) - self.at


def crc_ccitt(data: bytes) -> int:
    """CRC-CCITT (polynomial 0x1021, start 0xFFFF), as section 5.3.2 defines it."""
    return binascii.crc_hqx(data, 0xFFFF)


def is_scp_head(head: bytes) -> bool:
    return len(head) >= 22 and head[16:22] == MAGIC


@dataclass
class _Leads:
    codes: list[int]
    starts: list[int]
    ends: list[int]
    reference_subtracted: bool


@dataclass
class _Qrs:
    beat_type: int
    start: int  # sample numbers from 1, at the full rate
    fiducial: int
    end: int


def _sections(name: str, data: bytes) -> dict[int, bytes]:
    """Section id → its body (header removed), every CRC checked."""
    if len(data) < 6 + _SECTION_HEADER or data[16:22] != MAGIC:
        raise EcgFileError(name, _("SCP-ECG: section 0 is missing"))
    stated_crc, length = struct.unpack_from("<HI", data, 0)
    if length != len(data):
        raise EcgFileError(
            name,
            _(
                "SCP-ECG: the file is %(size)d bytes but says %(length)d; it is damaged or cut",
                size=len(data),
                length=length,
            ),
        )
    if crc_ccitt(data[2:]) != stated_crc:
        raise EcgFileError(name, _("SCP-ECG: the file's CRC does not match; the file is damaged"))
    sections: dict[int, bytes] = {}
    pointers = _section(name, data, 0, 7)
    reader = _Reader(name, pointers, 0)
    while reader.rest() >= 10:
        section_id, size, index = reader.take("HII")
        if size == 0 or section_id == 0:
            continue
        if index < 1 or index - 1 + size > len(data):
            raise EcgFileError(
                name,
                _("SCP-ECG: section %(section)d points outside the file", section=section_id),
            )
        sections[section_id] = _section(name, data, section_id, index)
    return sections


def _section(name: str, data: bytes, section_id: int, index: int) -> bytes:
    start = index - 1
    stated_crc, found_id, size = struct.unpack_from("<HHI", data, start)
    if found_id != section_id or size < _SECTION_HEADER or start + size > len(data):
        raise EcgFileError(
            name, _("SCP-ECG: section %(section)d has a broken header", section=section_id)
        )
    if crc_ccitt(data[start + 2 : start + size]) != stated_crc:
        raise EcgFileError(
            name,
            _(
                "SCP-ECG: section %(section)d fails its CRC; the file is damaged",
                section=section_id,
            ),
        )
    return data[start + _SECTION_HEADER : start + size]


def _tables(name: str, body: bytes | None) -> list[list[HuffmanCode]] | None:
    """Section 2's tables; None when the data are plain 16-bit samples."""
    if body is None:
        return None
    reader = _Reader(name, body, 2)
    count = reader.one("H")
    if count == DEFAULT_TABLE_MARK:
        return [default_table()]
    if not 1 <= count <= 256:
        raise EcgFileError(
            name, _("SCP-ECG: section 2 declares %(count)d Huffman tables", count=count)
        )
    tables = []
    for _table in range(count):
        codes = []
        for _entry in range(reader.one("H")):
            prefix, total, mode, base, reversed_code = reader.take("BBBhI")
            if not 1 <= prefix <= 32 or total < prefix or total > 64:
                raise EcgFileError(name, _("SCP-ECG: section 2 holds an impossible Huffman code"))
            # codes are stored bit-reversed: the first bit sent is the lowest
            codes.append(HuffmanCode(prefix, total, mode, base, _bits(reversed_code, prefix)))
        tables.append(codes)
    return tables


def huffman_decode(
    name: str, data: bytes, tables: list[list[HuffmanCode]], count: int
) -> np.ndarray:
    """``count`` values from ``data``, most significant bit of each byte first."""
    lookups = [{code.key: code for code in table} for table in tables]
    longest = [max(code.prefix_bits for code in table) for table in tables]
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
    out = np.zeros(count, dtype=np.int64)
    table, position, produced, total = 0, 0, 0, len(bits)
    while produced < count:
        code_value, width, found = 0, 0, None
        while width < longest[table]:
            if position >= total:
                raise EcgFileError(
                    name,
                    _(
                        "SCP-ECG: the compressed data end after %(have)d of %(need)d samples",
                        have=produced,
                        need=count,
                    ),
                )
            code_value = (code_value << 1) | bits[position]
            position += 1
            width += 1
            found = lookups[table].get((width, code_value))
            if found is not None:
                break
        if found is None:
            raise EcgFileError(name, _("SCP-ECG: a Huffman code in the data is not in the table"))
        if found.mode == 0:
            table = found.base_value - 1
            if not 0 <= table < len(tables):
                raise EcgFileError(name, _("SCP-ECG: a Huffman code switches to a missing table"))
            continue
        extra = found.total_bits - found.prefix_bits
        if extra:
            if position + extra > total:
                raise EcgFileError(name, _("SCP-ECG: the compressed data end inside a value"))
            value = 0
            for bit in bits[position : position + extra]:
                value = (value << 1) | bit
            position += extra
            if value >= 1 << (extra - 1):
                value -= 1 << extra
        else:
            value = found.base_value
        out[produced] = value
        produced += 1
    return out


def undo_differences(values: np.ndarray, order: int) -> np.ndarray:
    """First difference: x[n] = d[n] + x[n-1]; second: x[n] = d[n] + 2x[n-1] - x[n-2]
    (x[0] = d[0], x[1] = d[1]). The second is two running sums: the slope x[n] - x[n-1]
    starts at d[1] - d[0] and adds d[n]."""
    if order == 0 or len(values) < 2:
        return values
    if order == 1:
        return np.cumsum(values)
    slopes = np.concatenate([[values[1] - values[0]], values[2:]]).cumsum()
    return np.concatenate([[values[0]], values[0] + slopes.cumsum()])


def _leads(name: str, body: bytes | None) -> _Leads:
    if body is None:
        raise EcgFileError(name, _("SCP-ECG: section 3 (the lead definitions) is missing"))
    reader = _Reader(name, body, 3)
    count, flags = reader.take("BB")
    leads = _Leads([], [], [], bool(flags & 1))
    for _lead in range(count):
        start, end, code = reader.take("IIB")
        if end < start:
            raise EcgFileError(name, _("SCP-ECG: a lead in section 3 ends before it starts"))
        leads.starts.append(start)
        leads.ends.append(end)
        leads.codes.append(code)
    return leads


def _count(leads: _Leads, index: int) -> int:
    """Samples of one lead; a start of 0 (some writers count from 0) is taken as 1."""
    return leads.ends[index] - max(1, leads.starts[index]) + 1


def _blocks(name: str, reader: _Reader, count: int, section: int) -> list[bytes]:
    sizes = reader.take("H" * count)
    blocks = []
    for size in sizes:
        if reader.at + size > len(reader.data):
            raise EcgFileError(
                name, _("SCP-ECG: section %(section)d ends inside a lead's data", section=section)
            )
        blocks.append(reader.data[reader.at : reader.at + size])
        reader.at += size
    return blocks


def _decode_lead(
    name: str, block: bytes, tables: list[list[HuffmanCode]] | None, count: int
) -> np.ndarray:
    if tables is None:
        available = len(block) // 2
        return np.frombuffer(block[: min(count, available) * 2], dtype="<i2").astype(np.int64)
    return huffman_decode(name, block, tables, count)


def _qrs_locations(name: str, body: bytes | None) -> tuple[int, int, list[_Qrs], list[tuple]]:
    if body is None:
        raise EcgFileError(
            name, _("SCP-ECG: reference beats are subtracted but section 4 is missing")
        )
    reader = _Reader(name, body, 4)
    length_ms, fiducial, count = reader.take("HHH")
    beats = [_Qrs(*reader.take("HIII")) for _beat in range(count)]
    zones = [reader.take("II") for _beat in range(count)] if reader.rest() >= 8 * count else []
    return length_ms, fiducial, beats, zones


def protected_mask(length: int, zones: list[tuple[int, int]]) -> np.ndarray:
    mask = np.zeros(length, dtype=bool)
    for start, end in zones:
        mask[max(0, start - 1) : min(length, end)] = True
    return mask


def kept_positions(mask: np.ndarray, factor: int) -> np.ndarray:
    """The sample indexes a decimating encoder keeps: every sample of a protected zone,
    and every ``factor``-th sample of each run outside them, from the run's first."""
    kept = []
    run_start = None
    for index, protected in enumerate(mask.tolist()):
        if protected:
            run_start = None
            kept.append(index)
        else:
            if run_start is None:
                run_start = index
            if (index - run_start) % factor == 0:
                kept.append(index)
    return np.asarray(kept, dtype=np.int64)


def _restore_rate(values: np.ndarray, positions: np.ndarray, length: int) -> np.ndarray:
    return np.interp(np.arange(length), positions, values[: len(positions)].astype(np.float64))


def _device_report(sections: dict[int, bytes], name: str) -> DeviceReport | None:
    values: dict[str, float | None] = {}
    source = None
    if 7 in sections:
        reader = _Reader(name, sections[7], 7)
        try:
            _types, _spikes, rr, _pp = reader.take("BBHH")
            p_on, p_off, qrs_on, qrs_off, t_off, p_axis, qrs_axis, t_axis = reader.take("HHHHHhhh")
        except EcgFileError:
            rr = NOT_MEASURED
            p_on = p_off = qrs_on = qrs_off = t_off = NOT_MEASURED
            p_axis = qrs_axis = t_axis = NOT_MEASURED

        def span(first: int, last: int) -> float | None:
            if first >= NOT_MEASURED - 1 or last >= NOT_MEASURED - 1:
                return None
            return float(last - first)

        values = {
            "rr_ms": None if rr >= NOT_MEASURED - 1 else float(rr),
            "p_ms": span(p_on, p_off),
            "pr_ms": span(p_on, qrs_on),
            "qrs_ms": span(qrs_on, qrs_off),
            "qt_ms": span(qrs_on, t_off),
            "p_axis_deg": None if abs(p_axis) >= 999 else float(p_axis),
            "qrs_axis_deg": None if abs(qrs_axis) >= 999 else float(qrs_axis),
            "t_axis_deg": None if abs(t_axis) >= 999 else float(t_axis),
        }
        if values["rr_ms"]:
            values["heart_rate_bpm"] = 60000.0 / values["rr_ms"]
        source = "SCP-ECG section 7"
    if 10 in sections and not any(v is not None for v in values.values()):
        per_lead = _section10(name, sections[10])
        if per_lead:
            # a global interval spans the earliest onset to the latest offset over leads
            values = {
                "p_ms": _over_leads(per_lead, 0, max),
                "pr_ms": _over_leads(per_lead, 1, np.median),
                "qrs_ms": _over_leads(per_lead, 2, max),
                "qt_ms": _over_leads(per_lead, 3, max),
            }
            source = "SCP-ECG section 10 (per lead, combined)"
    statements = _statements(name, sections)
    kept = plausible_device_values(values)
    if not kept and not statements:
        return None
    return DeviceReport(source or "SCP-ECG sections 8/11", kept, tuple(statements))


def _section10(name: str, body: bytes) -> list[list[int]]:
    reader = _Reader(name, body, 10)
    count, _manufacturer = reader.take("HH")
    leads = []
    for _lead in range(count):
        if reader.rest() < 4:
            break
        _lead_id, size = reader.take("HH")
        if reader.rest() < size:
            break
        fields = list(struct.unpack_from(f"<{size // 2}h", reader.data, reader.at))
        reader.at += size
        leads.append(fields)
    return leads


def _over_leads(leads: list[list[int]], index: int, combine) -> float | None:
    values = [fields[index] for fields in leads if len(fields) > index]
    values = [v for v in values if 0 < v < NOT_MEASURED - 1]
    return float(combine(values)) if values else None


def _text(raw: bytes) -> str:
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()


def _statements(name: str, sections: dict[int, bytes]) -> list[str]:
    found: list[str] = []
    for section_id, typed in ((11, True), (8, False)):
        body = sections.get(section_id)
        if body is None or found:
            continue
        reader = _Reader(name, body, section_id)
        if reader.rest() < 9:
            continue
        reader.take("BHBBBBB")
        for _statement in range(reader.one("B")):
            if reader.rest() < 3:
                break
            _sequence, size = reader.take("BH")
            chunk = reader.data[reader.at : reader.at + size]
            reader.at += size
            if typed:
                if not chunk or chunk[0] not in (1, 2):
                    continue
                chunk = chunk[1:]
            line = _text(chunk)
            if line:
                found.append(line)
    return found


def _patient(name: str, body: bytes | None) -> tuple[PatientIdentifiers, dict]:
    if body is None:
        return PatientIdentifiers(), {}
    tags: dict[int, bytes] = {}
    reader = _Reader(name, body, 1)
    while reader.rest() >= 3:
        tag, size = reader.take("BH")
        if tag == 255 or reader.rest() < size:
            break
        tags.setdefault(tag, reader.data[reader.at : reader.at + size])
        reader.at += size
    names = [_text(tags.get(0, b"")), _text(tags.get(1, b""))]
    birth = None
    if len(tags.get(5, b"")) >= 4:
        year, month, day = struct.unpack_from("<HBB", tags[5])
        birth = f"{year:04d}-{month:02d}-{day:02d}" if year else None
    sex = {1: "M", 2: "F"}.get(tags.get(8, b"\x00")[:1][0] if tags.get(8) else 0)
    acquisition: dict = {}
    if len(tags.get(27, b"")) >= 2:
        acquisition["high_pass_hz"] = struct.unpack_from("<H", tags[27])[0] / 100.0
    if len(tags.get(28, b"")) >= 2:
        acquisition["low_pass_hz"] = float(struct.unpack_from("<H", tags[28])[0])
    return (
        PatientIdentifiers(
            name=" ".join(n for n in names if n) or None,
            id=_text(tags.get(2, b"")) or None,
            birth_date=birth,
            sex=sex,
        ),
        acquisition,
    )


def read_scp(name: str, path: Path, limits: EcgLimits) -> EcgSignal:
    checked_size(name, path, limits)
    try:
        data = path.read_bytes()
    except OSError:
        raise EcgFileError(name, _("the file is missing or unreadable")) from None
    sections = _sections(name, data)
    leads = _leads(name, sections.get(3))
    if 6 not in sections:
        raise EcgFileError(
            name, _("SCP-ECG: section 6 (the rhythm data) is missing; only rhythm data are read")
        )
    tables = _tables(name, sections.get(2))
    rhythm = _Reader(name, sections[6], 6)
    avm, interval_us, difference, _bimodal = rhythm.take("HHBB")
    if interval_us == 0 or avm == 0:
        raise EcgFileError(name, _("SCP-ECG: section 6 gives no sampling interval or amplitude"))
    if difference not in (0, 1, 2):
        raise EcgFileError(name, _("SCP-ECG: unknown difference encoding %(d)d", d=difference))
    blocks = _blocks(name, rhythm, len(leads.codes), 6)
    length = max(_count(leads, i) for i in range(len(leads.codes)))
    check_shape(name, len(leads.codes), length, limits)

    warnings: list[str] = []
    full_interval = interval_us
    reference = None
    if leads.reference_subtracted:
        length_ms, fiducial, beats, zones = _qrs_locations(name, sections.get(4))
        if 5 not in sections:
            raise EcgFileError(
                name, _("SCP-ECG: reference beats are subtracted but section 5 is missing")
            )
        beat = _Reader(name, sections[5], 5)
        ref_avm, full_interval, ref_difference, _reserved = beat.take("HHBB")
        if full_interval == 0 or ref_difference not in (0, 1, 2):
            raise EcgFileError(name, _("SCP-ECG: section 5 is not usable"))
        ref_count = max(1, round(length_ms * 1000 / full_interval))
        ref_blocks = _blocks(name, beat, len(leads.codes), 5)
        reference = [
            undo_differences(_decode_lead(name, b, tables, ref_count), ref_difference)
            * (ref_avm / 1000.0)
            for b in ref_blocks
        ]
    rate = check_sampling_rate(name, 1_000_000.0 / full_interval, limits)
    factor = max(1, round(interval_us / full_interval))
    if factor > 1 and not leads.reference_subtracted:
        raise EcgFileError(
            name, _("SCP-ECG: decimated rhythm data without reference beats cannot be restored")
        )

    channels: list[tuple[str, np.ndarray]] = []
    shortest = length
    for index, block in enumerate(blocks):
        count = _count(leads, index)
        if factor > 1:
            mask = protected_mask(count, zones)
            positions = kept_positions(mask, factor)
            stored = undo_differences(_decode_lead(name, block, tables, len(positions)), difference)
            microvolts = _restore_rate(stored, positions, count) * (avm / 1000.0)
        else:
            stored = undo_differences(_decode_lead(name, block, tables, count), difference)
            microvolts = stored.astype(np.float64) * (avm / 1000.0)
        if reference is not None:
            microvolts = _add_reference(microvolts, reference[index], fiducial, beats)
        shortest = min(shortest, len(microvolts))
        code = leads.codes[index]
        label = LEAD_CODES.get(code, f"lead {code}")
        if len(microvolts) and not microvolts.any():
            warnings.append(_("lead %(lead)s holds only zeros (not recorded)", lead=label))
        channels.append((label, microvolts))
    if shortest < length:
        warnings.append(
            _(
                "section 3 declares %(declared)d samples per lead but section 6 holds "
                "%(held)d; the recording is cut to %(held)d",
                declared=length,
                held=shortest,
            )
        )
    check_shape(name, len(channels), shortest, limits)
    patient, acquisition = _patient(name, sections.get(1))
    acquisition["stored_units"] = f"{avm / 1000:g} µV per unit"
    acquisition["compression"] = (
        ("Huffman" if tables else "none")
        + (f", difference {difference}" if difference else "")
        + (", reference beat subtracted" if leads.reference_subtracted else "")
        + (f", decimated ×{factor}" if factor > 1 else "")
    )
    return build_signal(
        [(label, values[:shortest].astype(np.float32)) for label, values in channels],
        rate,
        "scp_ecg",
        patient=patient,
        warnings=warnings,
        acquisition=acquisition,
        device=_device_report(sections, name),
    )


def _add_reference(
    values: np.ndarray, reference: np.ndarray, fiducial: int, beats: list[_Qrs]
) -> np.ndarray:
    """Add the type-0 reference beat back from each such QRS's start to its end of
    subtraction, aligned on the fiducial points (all sample numbers count from 1)."""
    out = values.astype(np.float64, copy=True)
    for qrs in beats:
        if qrs.beat_type != 0:
            continue
        for sample in range(qrs.start, qrs.end + 1):
            ref_index = sample - qrs.fiducial + fiducial - 1
            if 0 <= sample - 1 < len(out) and 0 <= ref_index < len(reference):
                out[sample - 1] += reference[ref_index]
    return out
