"""Checks every reader makes before it reads or allocates."""

from __future__ import annotations

import math
from pathlib import Path

from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.signal import EcgLimits


def checked_size(name: str, path: Path, limits: EcgLimits) -> int:
    """The file's size in bytes, refused when missing or over the limit."""
    try:
        size = path.stat().st_size
    except OSError:
        raise EcgFileError(name, _("the file is missing or unreadable")) from None
    if size > limits.max_file_bytes:
        raise EcgFileError(
            name,
            _(
                "the file is %(size)d bytes, over the limit of %(limit)d bytes",
                size=size,
                limit=limits.max_file_bytes,
            ),
        )
    if size == 0:
        raise EcgFileError(name, _("the file is empty"))
    return size


def check_shape(name: str, leads: int, samples: int, limits: EcgLimits) -> None:
    """Refuse claimed sizes that are empty or too large, before allocating for them."""
    if leads < 1:
        raise EcgFileError(name, _("the recording has no leads"))
    if leads > limits.max_leads:
        raise EcgFileError(
            name,
            _(
                "%(count)d leads is more than the %(limit)d accepted",
                count=leads,
                limit=limits.max_leads,
            ),
        )
    if samples < 1:
        raise EcgFileError(name, _("the recording has no samples"))
    if leads * samples > limits.max_values:
        raise EcgFileError(
            name,
            _(
                "%(leads)d leads × %(samples)d samples is more than the %(limit)d values accepted",
                leads=leads,
                samples=samples,
                limit=limits.max_values,
            ),
        )


def check_sampling_rate(name: str, rate: float, limits: EcgLimits) -> float:
    if not math.isfinite(rate) or not limits.min_sampling_rate <= rate <= limits.max_sampling_rate:
        raise EcgFileError(
            name,
            _(
                "sampling rate %(rate)s Hz is outside %(low)g–%(high)g Hz",
                rate=rate,
                low=limits.min_sampling_rate,
                high=limits.max_sampling_rate,
            ),
        )
    return float(rate)
