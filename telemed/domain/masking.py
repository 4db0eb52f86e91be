"""Masking of personal identifiers (national ID, phone) for pages, logs and API output."""

from __future__ import annotations

import re

# 18-digit resident ID (last may be X) and the old 15-digit form; mainland mobile numbers.
NATIONAL_ID_PATTERN = re.compile(r"(?<!\d)(\d{6})(\d{8}|\d{6})(\d{3}[\dXx])(?![\dXx])")
PHONE_PATTERN = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_national_id(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) <= 4:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:] if len(value) > 7 else "***" + value[-1]


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    digits = value.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:] if len(digits) > 7 else "***"


def mask_text(text: str) -> str:
    """Mask every national ID or mobile number found inside free text (log lines)."""
    text = NATIONAL_ID_PATTERN.sub(lambda m: mask_national_id(m.group(0)) or "", text)
    return PHONE_PATTERN.sub(lambda m: mask_phone(m.group(0)) or "", text)
