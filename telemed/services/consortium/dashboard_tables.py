"""The dashboard as tables: what the page shows, the CSV exports carry and the JSON API
returns, cell for cell. Each countable cell names the drill-down that lists its rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from flask_babel import lazy_gettext as _l

from telemed.domain.case_states import CaseKind
from telemed.domain.referral_states import Direction
from telemed.services.consortium.dashboard import Dashboard, DepartmentRow, TrendPoint


@dataclass(frozen=True)
class Column:
    key: str
    label: Any  # a lazy translation
    kind: str = "int"  # int, text, share, flag, minutes, date
    # The drill-down behind the column's cells: (what, extra filters).
    drill: tuple[str, dict[str, str]] | None = None


@dataclass
class Row:
    values: dict[str, Any]
    # Filters the row adds to its drill-downs (department, institution, days).
    filters: dict[str, str] = field(default_factory=dict)
    flagged: bool = False  # below target
    is_total: bool = False


@dataclass
class Table:
    name: str
    title: Any
    columns: list[Column]
    rows: list[Row]

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


def fmt(value: Any, kind: str) -> str:
    """A cell as the CSV and the page show it."""
    if value is None:
        return ""
    if kind == "share":
        return f"{float(value):.4f}"
    if kind == "flag":
        return "yes" if value else "no"
    if kind == "minutes":
        return f"{value / 60:.1f}"
    if isinstance(value, Fraction):
        return f"{float(value):.4f}"
    return str(value)


def _share(value: Fraction | None) -> Fraction | None:
    return value


def local_name(obj) -> str:
    """An institution's or department's name in the reader's language."""
    from flask_babel import get_locale

    english = str(get_locale() or "").startswith("en")
    return obj.name_en if english and getattr(obj, "name_en", None) else obj.name


def _name(obj) -> str:
    return local_name(obj) if obj is not None else str(_l("All departments"))


SEATS = "seats"
BOOKINGS = "bookings"


def departments_table(board: Dashboard) -> Table:
    columns = [
        Column("department", _l("Department"), "text"),
        Column(
            "published_seats", _l("Published outpatient seats"), drill=(SEATS, {"seats": "all"})
        ),
        Column(
            "down_shared_seats",
            _l("Down-shared seats"),
            drill=(SEATS, {"seats": "down_shared"}),
        ),
        Column("down_shared_share", _l("Down-shared share"), "share"),
        Column("target_share", _l("Target share (policy in force)"), "share"),
        Column("required_seats", _l("Seats required")),
        Column("shortfall_seats", _l("Short by")),
        Column("meets_target", _l("Meets target"), "flag"),
        Column(
            "booked_by_grassroots",
            _l("Booked by grassroots doctors"),
            drill=(BOOKINGS, {"status": "used"}),
        ),
        Column("use_rate", _l("Use of down-shared seats"), "share"),
        Column("attended", _l("Attended"), drill=(BOOKINGS, {"status": "attended"})),
        Column("no_shows", _l("No-shows"), drill=(BOOKINGS, {"status": "no_show"})),
        Column("cancelled", _l("Cancelled"), drill=(BOOKINGS, {"status": "cancelled"})),
        Column("released", _l("Released back"), drill=(SEATS, {"seats": "released"})),
        Column("green_reserve", _l("Green-channel reserve"), drill=(SEATS, {"seats": "green"})),
        Column(
            "consult_seats",
            _l("Remote consult seats"),
            drill=(SEATS, {"seats": "all", "service": "remote_consult"}),
        ),
        Column(
            "consult_booked",
            _l("Remote consults booked"),
            drill=(BOOKINGS, {"status": "used", "service": "remote_consult"}),
        ),
        Column("referrals_up", _l("Referrals up"), drill=("referrals", {"direction": "up"})),
        Column("referrals_down", _l("Referrals down"), drill=("referrals", {"direction": "down"})),
    ]
    rows = []
    for row in [*board.departments, board.totals]:
        if row is None:
            continue
        is_total = row.department is None
        s = row.seats
        if not is_total and not _has_activity(row):
            continue
        rows.append(
            Row(
                {
                    "department": _name(row.department),
                    "published_seats": s.outpatient.total,
                    "down_shared_seats": s.outpatient.shared,
                    "down_shared_share": s.outpatient.share,
                    "target_share": s.outpatient.target,
                    "required_seats": _ceil(s.outpatient.required) if s.outpatient.total else 0,
                    "shortfall_seats": s.outpatient.shortfall,
                    "meets_target": s.outpatient.meets,
                    "booked_by_grassroots": s.booked,
                    "use_rate": s.use_rate,
                    "attended": s.attended,
                    "no_shows": s.no_shows,
                    "cancelled": s.cancelled,
                    "released": s.released,
                    "green_reserve": s.green_reserve,
                    "consult_seats": s.consult_seats,
                    "consult_booked": s.consult_booked,
                    "referrals_up": row.referrals_up,
                    "referrals_down": row.referrals_down,
                },
                filters={} if is_total else {"department_id": str(row.department.id)},
                flagged=s.below_target,
                is_total=is_total,
            )
        )
    return Table("departments", _l("Outpatient seats by department"), columns, rows)


def _has_activity(row: DepartmentRow) -> bool:
    return bool(
        row.department.reads is None
        or row.seats.outpatient.total
        or row.seats.consult_seats
        or row.beds.bed_nights.total
        or row.referrals_up
        or row.referrals_down
    )


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


def beds_table(board: Dashboard) -> Table:
    columns = [
        Column("department", _l("Department"), "text"),
        Column("bed_nights", _l("Bed-nights")),
        Column("down_shared_bed_nights", _l("Down-shared bed-nights")),
        Column("bed_share", _l("Down-shared share"), "share"),
        Column("target_share", _l("Target share (policy in force)"), "share"),
        Column("meets_target", _l("Meets target"), "flag"),
        Column(
            "referral_bed_nights",
            _l("Bed-nights used by referrals"),
            drill=("bed_nights", {}),
        ),
        Column("use_rate", _l("Use of down-shared beds"), "share"),
        Column(
            "admissions_requested",
            _l("Admissions requested"),
            drill=("admissions", {"state": "requested"}),
        ),
        Column(
            "admissions_placed",
            _l("Admissions accepted"),
            drill=("admissions", {"state": "placed"}),
        ),
        Column(
            "admissions_declined",
            _l("Admissions declined"),
            drill=("admissions", {"state": "declined"}),
        ),
        Column("beds_last_day", _l("Beds on the last day")),
        Column("down_shared_beds_last_day", _l("Down-shared beds on the last day")),
    ]
    rows = []
    for row in [*board.departments, board.totals]:
        if row is None:
            continue
        is_total = row.department is None
        b = row.beds
        if not is_total and row.department.reads is not None and not b.bed_nights.total:
            continue
        rows.append(
            Row(
                {
                    "department": _name(row.department),
                    "bed_nights": b.bed_nights.total,
                    "down_shared_bed_nights": b.bed_nights.shared,
                    "bed_share": b.bed_nights.share,
                    "target_share": b.bed_nights.target,
                    "meets_target": b.bed_nights.meets,
                    "referral_bed_nights": b.referral_nights,
                    "use_rate": b.use_rate,
                    "admissions_requested": b.admissions_requested,
                    "admissions_placed": b.admissions_placed,
                    "admissions_declined": b.admissions_declined,
                    "beds_last_day": b.total_beds_last_day,
                    "down_shared_beds_last_day": b.down_shared_beds_last_day,
                },
                filters={} if is_total else {"department_id": str(row.department.id)},
                flagged=b.below_target,
                is_total=is_total,
            )
        )
    return Table("beds", _l("Inpatient beds by department"), columns, rows)


def institutions_table(board: Dashboard) -> Table:
    columns = [
        Column("institution", _l("Member institution"), "text"),
        Column("kind", _l("Kind"), "text"),
        Column(
            "booked_by_grassroots",
            _l("Down-shared seats booked"),
            drill=(BOOKINGS, {"status": "used", "service": "any"}),
        ),
        Column(
            "no_shows", _l("No-shows"), drill=(BOOKINGS, {"status": "no_show", "service": "any"})
        ),
        Column(
            "cancelled",
            _l("Cancelled"),
            drill=(BOOKINGS, {"status": "cancelled", "service": "any"}),
        ),
        Column("referrals_up", _l("Referrals up"), drill=("referrals", {"direction": "up"})),
        Column("referrals_down", _l("Referrals down"), drill=("referrals", {"direction": "down"})),
        Column(
            "admissions_requested",
            _l("Admissions requested"),
            drill=("admissions", {"state": "requested"}),
        ),
        Column("referral_bed_nights", _l("Referral bed-nights"), drill=("bed_nights", {})),
        Column("consults", _l("Remote consults"), drill=("cases", {"kind": "consult"})),
        Column("ecg_reads", _l("ECG reads"), drill=("cases", {"kind": "ecg_read"})),
        Column("imaging_reads", _l("Imaging reads"), drill=("cases", {"kind": "imaging_read"})),
    ]
    rows = [
        Row(
            {
                "institution": local_name(row.institution),
                "kind": row.institution.kind,
                "booked_by_grassroots": row.booked,
                "no_shows": row.no_shows,
                "cancelled": row.cancelled,
                "referrals_up": row.referrals_up,
                "referrals_down": row.referrals_down,
                "admissions_requested": row.admissions_requested,
                "referral_bed_nights": row.referral_nights,
                "consults": row.consults,
                "ecg_reads": row.ecg_reads,
                "imaging_reads": row.imaging_reads,
            },
            filters={"institution_id": str(row.institution.id)},
        )
        for row in board.institutions
    ]
    return Table("institutions", _l("Member institutions"), columns, rows)


REFERRAL_STATES = ("accepted", "declined", "cancelled", "scheduled", "completed", "followed_up")


def referrals_table(board: Dashboard) -> Table:
    columns = [Column("direction", _l("Direction"), "text")]
    columns.append(Column("opened", _l("Referrals opened"), drill=("referrals", {})))
    columns.append(
        Column("green_channel", _l("Green channel"), drill=("referrals", {"state": "green"}))
    )
    labels = {
        "accepted": _l("Accepted"),
        "declined": _l("Declined"),
        "cancelled": _l("Cancelled"),
        "scheduled": _l("Scheduled"),
        "completed": _l("Completed"),
        "followed_up": _l("Followed up"),
    }
    for state in REFERRAL_STATES:
        columns.append(Column(state, labels[state], drill=("referrals", {"state": state})))
    rows = []
    for direction, label in ((Direction.UP, _l("Upward")), (Direction.DOWN, _l("Downward"))):
        figures = board.referrals[direction]
        values: dict[str, Any] = {
            "direction": str(label),
            "opened": figures.up + figures.down,
            "green_channel": figures.green_channel,
        }
        for state in REFERRAL_STATES:
            values[state] = getattr(figures, state)
        rows.append(Row(values, filters={"direction": direction.value}))
    return Table("referrals", _l("Two-way referrals opened in the period"), columns, rows)


KIND_LABELS = {
    CaseKind.CONSULT: _l("Remote consults"),
    CaseKind.ECG_READ: _l("Remote ECG reads"),
    CaseKind.IMAGING_READ: _l("Remote imaging reads"),
}


def reads_table(board: Dashboard) -> Table:
    columns = [
        Column("service", _l("Service"), "text"),
        Column("submitted", _l("Submitted"), drill=("cases", {})),
        Column("reported", _l("Reported"), drill=("cases", {"reported": "yes"})),
        Column("median_minutes", _l("Median turnaround (min)"), "minutes"),
        Column("p90_minutes", _l("90th percentile (min)"), "minutes"),
    ]
    rows = [
        Row(
            {
                "service": str(KIND_LABELS[kind]),
                "submitted": figures.submitted,
                "reported": figures.reported,
                "median_minutes": figures.median_seconds,
                "p90_minutes": figures.p90_seconds,
            },
            filters={"kind": kind.value},
        )
        for kind, figures in board.reads.items()
    ]
    return Table("reads", _l("Remote consults and reads"), columns, rows)


def trend_table(board: Dashboard) -> Table:
    columns = [
        Column("bucket", _l("Period"), "text"),
        Column("first_day", _l("From"), "date"),
        Column("last_day", _l("To"), "date"),
        Column("published_seats", _l("Published seats"), drill=(SEATS, {"seats": "all"})),
        Column("down_shared_seats", _l("Down-shared"), drill=(SEATS, {"seats": "down_shared"})),
        Column("down_shared_share", _l("Share"), "share"),
        Column("target_share", _l("Target"), "share"),
        Column("meets_target", _l("Meets target"), "flag"),
        Column("booked_by_grassroots", _l("Booked"), drill=(BOOKINGS, {"status": "used"})),
        Column("released", _l("Released"), drill=(SEATS, {"seats": "released"})),
        Column("no_shows", _l("No-shows"), drill=(BOOKINGS, {"status": "no_show"})),
        Column("bed_share", _l("Bed share"), "share"),
        Column("referral_bed_nights", _l("Referral bed-nights"), drill=("bed_nights", {})),
        Column("referrals_up", _l("Referrals up"), drill=("referrals", {"direction": "up"})),
        Column("referrals_down", _l("Referrals down"), drill=("referrals", {"direction": "down"})),
        Column("consults", _l("Consults"), drill=("cases", {"kind": "consult"})),
        Column("ecg_reads", _l("ECG reads"), drill=("cases", {"kind": "ecg_read"})),
        Column("imaging_reads", _l("Imaging reads"), drill=("cases", {"kind": "imaging_read"})),
        Column("ecg_median_minutes", _l("ECG median (min)"), "minutes"),
        Column("imaging_median_minutes", _l("Imaging median (min)"), "minutes"),
    ]
    rows = [_trend_row(point) for point in board.trend]
    return Table("trend", _l("Trend"), columns, rows)


def _trend_row(point: TrendPoint) -> Row:
    s, b = point.seats, point.beds
    reads = point.reads
    return Row(
        {
            "bucket": point.bucket.label(),
            "first_day": point.bucket.first.isoformat(),
            "last_day": point.bucket.last.isoformat(),
            "published_seats": s.outpatient.total,
            "down_shared_seats": s.outpatient.shared,
            "down_shared_share": s.outpatient.share,
            "target_share": s.outpatient.target,
            "meets_target": s.outpatient.meets,
            "booked_by_grassroots": s.booked,
            "released": s.released,
            "no_shows": s.no_shows,
            "bed_share": b.bed_nights.share,
            "referral_bed_nights": b.referral_nights,
            "referrals_up": point.referrals.up,
            "referrals_down": point.referrals.down,
            "consults": reads[CaseKind.CONSULT].submitted if reads else 0,
            "ecg_reads": reads[CaseKind.ECG_READ].submitted if reads else 0,
            "imaging_reads": reads[CaseKind.IMAGING_READ].submitted if reads else 0,
            "ecg_median_minutes": reads[CaseKind.ECG_READ].median_seconds if reads else None,
            "imaging_median_minutes": (
                reads[CaseKind.IMAGING_READ].median_seconds if reads else None
            ),
        },
        filters={"first": point.bucket.first.isoformat(), "last": point.bucket.last.isoformat()},
        flagged=s.below_target,
    )


TABLES = {
    "departments": departments_table,
    "beds": beds_table,
    "institutions": institutions_table,
    "referrals": referrals_table,
    "reads": reads_table,
    "trend": trend_table,
}


def all_tables(board: Dashboard) -> dict[str, Table]:
    return {name: build(board) for name, build in TABLES.items()}


def as_csv_rows(table: Table) -> list[list[str]]:
    header = [c.key for c in table.columns]
    body = [[fmt(row.values.get(c.key), c.kind) for c in table.columns] for row in table.rows]
    return [header, *body]


def as_json(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "title": str(table.title),
        "columns": [{"key": c.key, "label": str(c.label), "kind": c.kind} for c in table.columns],
        "rows": [
            {
                "values": {c.key: fmt(row.values.get(c.key), c.kind) for c in table.columns},
                "below_target": row.flagged,
                "total": row.is_total,
            }
            for row in table.rows
        ],
    }
