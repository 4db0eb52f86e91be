"""An SCP-ECG writer for tests, written from EN 1064 independently of the reader.

It encodes what the reader must decode: the default Huffman table or the file's own
(with table switches), first and second differences, reference-beat subtraction with
QRS locations and protected zones, decimation outside those zones, and sections 7, 10,
11 and 8. Its CRC is the bitwise CRC-CCITT of the standard (the reader uses binascii).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np


def crc_ccitt(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@dataclass
class Code:
    bits: str  # the prefix as sent
    extra: int = 0  # bits of a literal value after the prefix
    value: int = 0  # the value when extra == 0
    switch_to: int | None = None  # table number (from 1) this code switches to


# A file's own tables: table 1 favours small values, table 2 a run of fives.
CUSTOM_TABLES = [
    [
        Code("0", value=0),
        Code("10", value=1),
        Code("110", value=-1),
        Code("1110", switch_to=2),
        Code("1111", extra=16),
    ],
    [
        Code("00", value=5),
        Code("01", switch_to=1),
        Code("10", value=0),
        Code("11", extra=16),
    ],
]


def default_code(value: int) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude <= 8:
        return "1" * magnitude + "0" + ("1" if value < 0 else "0")
    if -128 <= value <= 127:
        return "1111111110" + format(value & 0xFF, "08b")
    return "1111111111" + format(value & 0xFFFF, "016b")


def custom_encode(values: list[int]) -> str:
    out = []
    table = 0
    for value in values:
        while True:
            direct = next(
                (c for c in CUSTOM_TABLES[table] if c.extra == 0 and c.switch_to is None and
                 c.value == value),
                None,
            )  # fmt: skip
            if direct:
                out.append(direct.bits)
                break
            other = 1 - table
            if any(c.switch_to is None and c.extra == 0 and c.value == value
                   for c in CUSTOM_TABLES[other]):  # fmt: skip
                switch = next(c for c in CUSTOM_TABLES[table] if c.switch_to == other + 1)
                out.append(switch.bits)
                table = other
                continue
            literal = next(c for c in CUSTOM_TABLES[table] if c.extra)
            out.append(literal.bits + format(value & 0xFFFF, "016b"))
            break
    return "".join(out)


def pack(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def differences(values: np.ndarray, order: int) -> list[int]:
    x = [int(v) for v in values]
    if order == 0:
        return x
    if order == 1:
        return [x[0]] + [x[n] - x[n - 1] for n in range(1, len(x))]
    return x[:2] + [x[n] - 2 * x[n - 1] + x[n - 2] for n in range(2, len(x))]


def section(number: int, body: bytes, version: int = 20) -> bytes:
    size = 16 + len(body)
    rest = struct.pack("<HI", number, size) + bytes([version, version]) + b"\0" * 6 + body
    return struct.pack("<H", crc_ccitt(rest)) + rest


@dataclass
class ScpRecord:
    lead_codes: list[int]
    samples: np.ndarray  # leads × samples, integers in units of ``avm_nv``
    avm_nv: int = 1000
    interval_us: int = 2000
    huffman: str | None = "default"  # None (16-bit samples), "default" or "custom"
    difference: int = 0
    # reference-beat subtraction: ref beats (leads × samples), fiducial (from 1), QRSs
    reference: np.ndarray | None = None
    fiducial: int = 0
    qrs: list[tuple[int, int, int, int]] = field(default_factory=list)  # type, start, fc, end
    protected: list[tuple[int, int]] = field(default_factory=list)
    decimation: int = 1
    global_values: dict | None = None  # section 7
    per_lead: list[list[int]] | None = None  # section 10
    statements: list[str] = field(default_factory=list)  # section 11
    patient: dict = field(default_factory=dict)
    crc_damage: bool = False


def _encode(values: list[int], huffman: str | None) -> bytes:
    if huffman is None:
        return struct.pack(f"<{len(values)}h", *values)
    if huffman == "default":
        return pack("".join(default_code(v) for v in values))
    return pack(custom_encode(values))


def _section2(huffman: str | None) -> bytes | None:
    if huffman is None:
        return None
    if huffman == "default":
        return struct.pack("<H", 19999)
    body = struct.pack("<H", len(CUSTOM_TABLES))
    for table in CUSTOM_TABLES:
        body += struct.pack("<H", len(table))
        for code in table:
            prefix = len(code.bits)
            reversed_code = int(code.bits[::-1], 2)  # stored with the first bit lowest
            mode = 0 if code.switch_to else 1
            base = code.switch_to if code.switch_to else code.value
            body += struct.pack("<BBBhI", prefix, prefix + code.extra, mode, base, reversed_code)
    return body


def kept(length: int, zones: list[tuple[int, int]], factor: int) -> list[int]:
    mask = np.zeros(length, dtype=bool)
    for start, end in zones:
        mask[start - 1 : end] = True
    out, run = [], None
    for i in range(length):
        if mask[i]:
            run = None
            out.append(i)
        else:
            run = i if run is None else run
            if (i - run) % factor == 0:
                out.append(i)
    return out


def write_scp(record: ScpRecord) -> bytes:
    leads, length = record.samples.shape
    sections: dict[int, bytes] = {}
    tags = b""
    for tag, value in (
        (0, record.patient.get("last", "").encode() + b"\0"),
        (1, record.patient.get("first", "").encode() + b"\0"),
        (2, record.patient.get("id", "").encode() + b"\0"),
        (27, struct.pack("<H", 5)),  # 0.05 Hz
        (28, struct.pack("<H", 150)),
    ):
        tags += struct.pack("<BH", tag, len(value)) + value
    tags += struct.pack("<BH", 255, 0)
    sections[1] = tags
    table = _section2(record.huffman)
    if table is not None:
        sections[2] = table
    flags = (1 if record.reference is not None else 0) | 0b100 | (leads << 3)
    body = struct.pack("<BB", leads, flags)
    for code in record.lead_codes:
        body += struct.pack("<IIB", 1, length, code)
    sections[3] = body

    residual = record.samples.astype(np.int64).copy()
    rhythm_interval = record.interval_us
    if record.reference is not None:
        ref_len = record.reference.shape[1]
        length_ms = ref_len * record.interval_us // 1000
        body = struct.pack("<HHH", length_ms, record.fiducial, len(record.qrs))
        for beat_type, start, fc, end in record.qrs:
            body += struct.pack("<HIII", beat_type, start, fc, end)
            if beat_type == 0:
                for sample in range(start, end + 1):
                    residual[:, sample - 1] -= record.reference[
                        :, sample - fc + record.fiducial - 1
                    ]
        for start, end in record.protected:
            body += struct.pack("<II", start, end)
        sections[4] = body
        encoded = [_encode(differences(r, record.difference), record.huffman)
                   for r in record.reference]  # fmt: skip
        sections[5] = (
            struct.pack("<HHBB", record.avm_nv, record.interval_us, record.difference, 0)
            + struct.pack(f"<{leads}H", *[len(e) for e in encoded])
            + b"".join(encoded)
        )
        rhythm_interval = record.interval_us * record.decimation
    if record.decimation > 1:
        positions = kept(length, record.protected, record.decimation)
        residual = residual[:, positions]
    encoded = [_encode(differences(r, record.difference), record.huffman) for r in residual]
    sections[6] = (
        struct.pack(
            "<HHBB",
            record.avm_nv,
            rhythm_interval,
            record.difference,
            1 if record.decimation > 1 else 0,
        )
        + struct.pack(f"<{leads}H", *[len(e) for e in encoded])
        + b"".join(encoded)
    )
    if record.global_values:
        g = record.global_values
        sections[7] = struct.pack("<BBHH", 1, 0, g["rr"], g["rr"]) + struct.pack(
            "<HHHHHhhh",
            g["p_on"], g["p_off"], g["qrs_on"], g["qrs_off"], g["t_off"],
            g["p_axis"], g["qrs_axis"], g["t_axis"],
        )  # fmt: skip
    if record.per_lead:
        body = struct.pack("<HH", len(record.per_lead), 0)
        for code, fields in zip(record.lead_codes, record.per_lead, strict=False):
            body += struct.pack("<HH", code, 2 * len(fields)) + struct.pack(
                f"<{len(fields)}h", *fields
            )
        sections[10] = body
    if record.statements:
        body = struct.pack("<BHBBBBBB", 1, 2026, 12, 7, 10, 0, 0, len(record.statements))
        for number, text in enumerate(record.statements, 1):
            data = bytes([1]) + text.encode() + b"\0"
            body += struct.pack("<BH", number, len(data)) + data
        sections[11] = body

    ordered = sorted(sections)
    blobs = {n: section(n, sections[n]) for n in ordered}
    # section 0 lists sections 0–11 (absent ones with length 0)
    pointer_count = 12
    position = 6 + 16 + 10 * pointer_count + 1  # index counts from 1
    pointers = b""
    places = {}
    for number in range(pointer_count):
        if number == 0:
            pointers += struct.pack("<HII", 0, 16 + 10 * pointer_count, 7)
        elif number in blobs:
            places[number] = position
            pointers += struct.pack("<HII", number, len(blobs[number]), position)
            position += len(blobs[number])
        else:
            pointers += struct.pack("<HII", number, 0, 0)
    size = 16 + len(pointers)
    rest = struct.pack("<HI", 0, size) + bytes([20, 20]) + b"SCPECG" + pointers
    section0 = struct.pack("<H", crc_ccitt(rest)) + rest
    content = section0 + b"".join(blobs[n] for n in ordered)
    total = 6 + len(content)
    head_rest = struct.pack("<I", total) + content
    data = struct.pack("<H", crc_ccitt(head_rest)) + head_rest
    if record.crc_damage:
        data = data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:]
    return data
