"""CSV: a header row of lead names, then one row per sample.

The layout this service accepts (say it to whoever exports the file)::

    # sampling_rate=500
    # units=uV
    I,II,V1,V2,V3,V4,V5,V6
    -5,-17.5,107.5,...

- ``#`` lines before the header carry settings as ``key=value``: ``sampling_rate`` (Hz,
  required unless the caller passes it; when both are given they must agree), ``units``
  (``uV`` by default, or ``mV``/``V``), ``patient_id`` and ``patient_name``.
- Separators: comma, or tab/semicolon when the header uses them.
- A first column named ``time``, ``t``, ``time_s``, ``time_ms``, ``timestamp`` or
  ``sample`` is ignored.
- Every row has one number per column; a ragged row, an empty cell or text in a number
  column is refused with its line and column.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path

import numpy as np
from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers._checks import check_sampling_rate, check_shape, checked_size
from telemed.ecg.signal import EcgLimits, EcgSignal, PatientIdentifiers, build_signal

_UNITS_TO_MICROVOLT = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1000.0, "v": 1_000_000.0}
_TIME_COLUMNS = {"time", "t", "time_s", "time_ms", "timestamp", "sample", "sample_index"}


class _Preamble:
    def __init__(self) -> None:
        self.settings: dict[str, str] = {}
        self.header: list[str] = []
        self.header_line = 0
        self.delimiter = ","


def _read_preamble(name: str, text_stream: io.TextIOBase) -> _Preamble:
    preamble = _Preamble()
    for line_number, raw in enumerate(text_stream, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].partition("=")
            if sep:
                preamble.settings[key.strip().lower()] = value.strip()
            continue
        preamble.delimiter = next((d for d in (",", "\t", ";") if d in line), ",")
        preamble.header = [
            cell.strip() for cell in next(csv.reader([line], delimiter=preamble.delimiter))
        ]
        preamble.header_line = line_number
        return preamble
    raise EcgFileError(name, _("CSV: no header row of lead names"))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbered_rows(reader, header_line: int):
    for row in reader:
        yield header_line + reader.line_num, row


def _row_problem(row: list[str], line: int, width: int, columns: list[str]) -> str | None:
    if len(row) != width:
        return _(
            "CSV line %(line)d has %(have)d values but the header names %(want)d columns",
            line=line,
            have=len(row),
            want=width,
        )
    for column, cell in enumerate(row):
        text = cell.strip()
        if not text:
            return _(
                "CSV line %(line)d, column %(column)s: empty value",
                line=line,
                column=columns[column],
            )
        if not _is_number(text) or not math.isfinite(float(text)):
            return _(
                "CSV line %(line)d, column %(column)s: %(value)r is not a number",
                line=line,
                column=columns[column],
                value=text[:40],
            )
    return None


def _locate_bad_cell(
    name: str, path: Path, preamble: _Preamble, columns: list[str]
) -> EcgFileError:
    """The precise refusal for a file the fast reader could not take: line and column."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as stream:
        for _skip in range(preamble.header_line):
            stream.readline()
        reader = csv.reader(stream, delimiter=preamble.delimiter)
        try:
            for line, row in _numbered_rows(reader, preamble.header_line):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if row[0].lstrip().startswith("#"):
                    continue
                problem = _row_problem(row, line, len(preamble.header), columns)
                if problem:
                    return EcgFileError(name, problem)
        except csv.Error as error:
            return EcgFileError(name, _("CSV: unreadable (%(detail)s)", detail=str(error)))
    return EcgFileError(name, _("CSV: the values could not be read as numbers"))


def read_csv(
    name: str, path: Path, limits: EcgLimits, *, sampling_rate: float | None = None
) -> EcgSignal:
    checked_size(name, path, limits)
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as stream:
        preamble = _read_preamble(name, stream)
    header = preamble.header
    if any(not cell for cell in header):
        raise EcgFileError(name, _("CSV: the header row has an empty column name"))
    if all(_is_number(cell) for cell in header):
        raise EcgFileError(name, _("CSV: the first row must name the leads, not hold numbers"))
    columns = [f"{i + 1} ({cell})" for i, cell in enumerate(header)]

    declared = preamble.settings.get("sampling_rate") or preamble.settings.get("fs")
    rate = sampling_rate
    if declared is not None:
        try:
            declared_rate = float(declared)
        except ValueError:
            raise EcgFileError(
                name, _("CSV: sampling_rate %(value)r is not a number", value=declared)
            ) from None
        if rate is not None and not math.isclose(rate, declared_rate):
            raise EcgFileError(
                name,
                _(
                    "CSV: the file says %(file)g Hz but %(given)g Hz was given",
                    file=declared_rate,
                    given=rate,
                ),
            )
        rate = declared_rate
    if rate is None:
        raise EcgFileError(name, _("CSV: no sampling rate; add a line '# sampling_rate=500'"))
    rate = check_sampling_rate(name, rate, limits)
    unit = preamble.settings.get("units", "uV").strip().lower()
    factor = _UNITS_TO_MICROVOLT.get(unit)
    if factor is None:
        raise EcgFileError(name, _("CSV: units %(unit)r is not uV, mV or V", unit=unit))

    lead_columns = list(range(len(header)))
    if header[0].lower() in _TIME_COLUMNS and len(header) > 1:
        lead_columns = lead_columns[1:]
    check_shape(name, len(lead_columns), 1, limits)
    max_rows = limits.max_values // len(lead_columns)

    try:
        with path.open(encoding="utf-8-sig", errors="strict", newline="") as stream:
            for _skip in range(preamble.header_line):
                stream.readline()
            with warnings.catch_warnings():
                # an empty body is refused below, with its reason
                warnings.filterwarnings("ignore", "loadtxt: input contained no data")
                data = np.loadtxt(
                    stream,
                    delimiter=preamble.delimiter,
                    comments="#",
                    dtype=np.float64,
                    ndmin=2,
                    max_rows=max_rows + 1,
                )
    except UnicodeDecodeError:
        raise EcgFileError(name, _("CSV: the file is not UTF-8 text")) from None
    except ValueError:
        raise _locate_bad_cell(name, path, preamble, columns) from None
    if data.size == 0:
        raise EcgFileError(name, _("the recording has no samples"))
    if data.shape[1] != len(header):
        raise _locate_bad_cell(name, path, preamble, columns)
    if data.shape[0] > max_rows:
        check_shape(name, len(lead_columns), data.shape[0], limits)
    if not np.isfinite(data).all():
        raise _locate_bad_cell(name, path, preamble, columns)

    notes: list[str] = []
    leads = data[:, lead_columns]
    if factor == 1.0 and 0 < np.abs(leads).max() < 20:
        notes.append(_("the values look like millivolts; declare '# units=mV' if they are"))
    channels = [
        (header[column], (data[:, column] * factor).astype(np.float32)) for column in lead_columns
    ]
    patient = PatientIdentifiers(
        id=preamble.settings.get("patient_id") or None,
        name=preamble.settings.get("patient_name") or None,
    )
    return build_signal(
        channels, rate, "csv", patient=patient, warnings=notes, acquisition={"stored_units": unit}
    )
