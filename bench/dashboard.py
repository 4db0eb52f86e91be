"""Dashboard figures at scale: a year of consortium activity, each dashboard view's
p50/p95 beside the raw SQL aggregate it stands on (the ratio is the figure).

Generates (sizes are flags): slots with three seats each (one down-shared, some green,
unbooked ones mostly released), down-shared bookings (completed, no-shows, cancelled),
cases (ECG, imaging, consults with turnaround), referrals both ways, admissions with
their bed-nights, policy and bed changes mid-year. Rows go in by bulk insert (COPY on
PostgreSQL), not through the services; nothing is asserted.

    .venv/bin/python bench/dashboard.py                      # both databases, full size
    .venv/bin/python bench/dashboard.py --db sqlite --slots 100000 --bookings 30000 \\
        --cases 10000                                        # a quick run
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TELEMED_SECRET_KEY", "bench")

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from telemed import create_app
from telemed.domain.figures import Period
from telemed.extensions import db

ZONE = ZoneInfo("Asia/Shanghai")
YEAR = 2025
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "telemed_bench_dashboard"


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, dtime(hour, minute), ZONE).astimezone(UTC)


# -- generating ----------------------------------------------------------------------------


class Writer:
    """Bulk rows into a table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, connection, dialect: str) -> None:
        self.connection = connection
        self.dialect = dialect

    def _sqlite_value(self, value):
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    def write(self, table: str, columns: list[str], rows: Iterable[tuple]) -> int:
        count = 0
        raw = self.connection.connection.dbapi_connection
        if self.dialect == "postgresql":
            statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            return count
        cursor = raw.cursor()
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        batch = []
        for row in rows:
            batch.append(tuple(self._sqlite_value(v) for v in row))
            if len(batch) >= 50_000:
                cursor.executemany(sql, batch)
                count += len(batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
            count += len(batch)
        return count


def generate(app, sizes: argparse.Namespace) -> dict[str, int]:
    rng = random.Random(2025)
    counts: dict[str, int] = {}
    now = datetime(YEAR + 1, 1, 1, tzinfo=UTC)
    with app.app_context():
        connection = db.session.connection()
        dialect = connection.dialect.name
        w = Writer(connection, dialect)
        created = now - timedelta(days=400)
        w.write(
            "consortium",
            ["id", "name", "name_en", "timezone", "created_at"],
            [(1, "基准医联体", "Bench Consortium", "Asia/Shanghai", created)],
        )
        members = list(range(2, 2 + sizes.members))
        w.write(
            "institution",
            ["id", "consortium_id", "code", "name", "name_en", "kind", "created_at"],
            [(1, 1, "LEAD", "Lead", "Lead", "lead", created)]
            + [
                (
                    i,
                    1,
                    f"M{i}",
                    f"Member {i}",
                    f"Member {i}",
                    ("township", "community", "village")[i % 3],
                    created,
                )
                for i in members
            ],
        )
        clinical = list(range(1, sizes.departments + 1))
        ecg_centre, rad_centre = sizes.departments + 1, sizes.departments + 2
        w.write(
            "department",
            ["id", "institution_id", "code", "name", "name_en", "reads", "created_at"],
            [(d, 1, f"D{d}", f"Dept {d}", f"Dept {d}", None, created) for d in clinical]
            + [
                (ecg_centre, 1, "ECG", "ECG", "ECG", "ecg", created),
                (rad_centre, 1, "RAD", "RAD", "RAD", "imaging", created),
            ],
        )
        users = []
        specialists = []
        uid = 1
        users.append((uid, "admin", "admin", "admin", 1, None, "x", True, created))
        for n in range(sizes.specialists):
            uid += 1
            department = clinical[n % len(clinical)]
            users.append(
                (uid, f"s{uid}", f"s{uid}", "specialist", 1, department, "x", True, created)
            )
            specialists.append((uid, department))
        readers = {}
        for centre in (ecg_centre, rad_centre):
            uid += 1
            users.append((uid, f"r{uid}", f"r{uid}", "specialist", 1, centre, "x", True, created))
            readers[centre] = uid
        doctors = {}
        for institution in members:
            uid += 1
            users.append(
                (uid, f"g{uid}", f"g{uid}", "grassroots", institution, None, "x", True, created)
            )
            doctors[institution] = uid
        w.write(
            "user_account",
            [
                "id",
                "username",
                "display_name",
                "role",
                "institution_id",
                "department_id",
                "password_hash",
                "is_enabled",
                "created_at",
            ],
            users,
        )
        patients_per = max(1, sizes.patients // len(members))
        patients = {inst: [] for inst in members}
        rows = []
        pid = 0
        for institution in members:
            for _ in range(patients_per):
                pid += 1
                rows.append((pid, institution, f"P{pid}", "unknown", created))
                patients[institution].append(pid)
        counts["patients"] = w.write(
            "patient", ["id", "institution_id", "name", "sex", "created_at"], rows
        )
        # Policies: two departments raise their share mid-year; beds change mid-year.
        policy_rows = []
        for n, department in enumerate(clinical, 1):
            policy_rows.append((n, department, local(date(YEAR - 1, 12, 1)), 1, 3, 1, 4))
        for m, department in enumerate(clinical[:2], len(clinical) + 1):
            policy_rows.append((m, department, local(date(YEAR, 7, 1)), 2, 5, 1, 4))
        w.write(
            "department_policy",
            [
                "id",
                "department_id",
                "valid_from",
                "outpatient_share_num",
                "outpatient_share_den",
                "bed_share_num",
                "bed_share_den",
                "early_access_days",
                "hospital_booking_days",
                "release_cutoff_hours",
                "cancel_notice_hours",
                "hold_minutes",
                "offer_minutes",
                "no_show_grace_minutes",
                "green_channel_seats_per_slot",
                "created_at",
            ],
            [(*row, 14, 7, 48, 2, 5, 30, 30, 0, created) for row in policy_rows],
        )
        inventory = []
        for n, department in enumerate(clinical):
            inventory.append((2 * n + 1, department, date(YEAR - 1, 12, 1), 40, 8 + n % 4, created))
            inventory.append((2 * n + 2, department, date(YEAR, 6, 1), 40, 10 + n % 3, created))
        w.write(
            "bed_inventory",
            ["id", "department_id", "valid_from", "total_beds", "down_shared_beds", "created_at"],
            inventory,
        )
        counts.update(
            _slots_and_bookings(w, sizes, rng, specialists, members, doctors, patients, created)
        )
        counts.update(
            _cases(
                w,
                sizes,
                rng,
                clinical,
                readers,
                specialists,
                members,
                doctors,
                patients,
                ecg_centre,
                rad_centre,
            )
        )
        counts.update(
            _referrals_and_beds(
                w, sizes, rng, clinical, specialists, members, doctors, patients, inventory
            )
        )
        if dialect == "postgresql":
            for table in (
                "consortium",
                "institution",
                "department",
                "user_account",
                "patient",
                "department_policy",
                "bed_inventory",
                "slot",
                "slot_seat",
                "booking",
                "clinical_case",
                "referral",
                "admission",
                "bed_day",
            ):
                # Table names from the list above, not from input.
                resync = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT max(id) FROM {table}), 1))"  # noqa: E501
                connection.exec_driver_sql(resync)
        db.session.commit()
        connection = db.session.connection()
        connection.exec_driver_sql("ANALYZE")
        db.session.commit()
    return counts


def _slots_and_bookings(w, sizes, rng, specialists, members, doctors, patients, created):
    days = [date(YEAR, 1, 1) + timedelta(days=n) for n in range(365)]
    per_day = -(-sizes.slots // (len(specialists) * len(days)))
    minutes = max(5, min(30, (10 * 60) // per_day))
    slot_rows, seat_rows = [], []
    booked_seats: list[tuple[int, int, datetime, datetime]] = []  # seat, slot, start, end
    slot_id = seat_id = 0
    want_booked = sizes.bookings / sizes.slots  # bookings per slot, on the down-shared seat
    for day in days:
        for specialist, department in specialists:
            for n in range(per_day):
                if slot_id >= sizes.slots:
                    break
                slot_id += 1
                start = local(day, 8) + timedelta(minutes=minutes * n)
                end = start + timedelta(minutes=minutes)
                consult = n == per_day - 1  # the last slot of the day is a remote consult
                slot_rows.append(
                    (
                        slot_id,
                        specialist,
                        department,
                        "remote_consult" if consult else "outpatient",
                        start,
                        end,
                        "open",
                        created,
                    )
                )
                seats = 1 if consult else 3
                for seat_no in range(1, seats + 1):
                    seat_id += 1
                    down = seat_no == 1
                    green = down and not consult and slot_id % 20 == 0
                    booked = down and rng.random() < want_booked
                    released = down and not booked and rng.random() < 0.7
                    seat_rows.append(
                        (
                            seat_id,
                            slot_id,
                            seat_no,
                            "hospital" if (not down or released) else "down_shared",
                            None,
                            start - timedelta(hours=48) if released else None,
                            green,
                        )
                    )
                    if booked:
                        booked_seats.append((seat_id, slot_id, start, end))
    counts = {
        "slots": w.write(
            "slot",
            [
                "id",
                "specialist_id",
                "department_id",
                "service_type",
                "starts_at",
                "ends_at",
                "status",
                "created_at",
            ],
            slot_rows,
        ),
    }
    del slot_rows
    counts["seats"] = w.write(
        "slot_seat",
        [
            "id",
            "slot_id",
            "seat_no",
            "pool",
            "allotted_institution_id",
            "released_at",
            "green_channel",
        ],
        seat_rows,
    )
    del seat_rows
    # One patient never twice at once: patients take turns in booking order.
    all_patients = [(inst, p) for inst in members for p in patients[inst]]
    booking_rows = []
    for n, (seat, slot, start, end) in enumerate(booked_seats[: sizes.bookings], 1):
        institution, patient = all_patients[n % len(all_patients)]
        roll = rng.random()
        status = (
            "no_show"
            if roll < 0.08
            else "cancelled"
            if roll < 0.15
            else "booked"
            if roll < 0.2
            else "completed"
        )
        booked_at = start - timedelta(days=rng.randrange(2, 14))
        booking_rows.append(
            (
                n,
                seat,
                slot,
                "down_shared",
                institution,
                doctors[institution],
                patient,
                status,
                start,
                end,
                booked_at,
                booked_at + timedelta(hours=6) if status == "cancelled" else None,
                booked_at,
            )
        )
    counts["bookings"] = w.write(
        "booking",
        [
            "id",
            "seat_id",
            "slot_id",
            "pool",
            "institution_id",
            "booked_by_id",
            "patient_id",
            "status",
            "starts_at",
            "ends_at",
            "confirmed_at",
            "cancelled_at",
            "created_at",
        ],
        booking_rows,
    )
    return counts


def _cases(
    w,
    sizes,
    rng,
    clinical,
    readers,
    specialists,
    members,
    doctors,
    patients,
    ecg_centre,
    rad_centre,
):
    rows = []
    start = local(date(YEAR, 1, 1))
    seconds = 365 * 24 * 3600
    for n in range(1, sizes.cases + 1):
        roll = rng.random()
        kind, target, assigned, spread = (
            ("ecg_read", ecg_centre, readers[ecg_centre], (5, 600))
            if roll < 0.6
            else ("imaging_read", rad_centre, readers[rad_centre], (30, 2000))
            if roll < 0.85
            else ("consult", None, None, (600, 6000))
        )
        if kind == "consult":
            assigned, target = specialists[n % len(specialists)]
        institution = members[n % len(members)]
        submitted = start + timedelta(seconds=rng.randrange(seconds))
        minutes = spread[0] * (spread[1] / spread[0]) ** rng.random()
        reported = submitted + timedelta(minutes=minutes) if rng.random() > 0.03 else None
        rows.append(
            (
                n,
                kind,
                "reported" if reported else "submitted",
                "routine",
                2,
                patients[institution][n % len(patients[institution])],
                institution,
                doctors[institution],
                "bench",
                target,
                assigned,
                submitted,
                reported,
                submitted,
            )
        )
    count = w.write(
        "clinical_case",
        [
            "id",
            "kind",
            "status",
            "priority",
            "priority_rank",
            "patient_id",
            "institution_id",
            "requested_by_id",
            "question",
            "target_department_id",
            "assigned_to_id",
            "submitted_at",
            "reported_at",
            "created_at",
        ],
        rows,
    )
    return {"cases": count}


def _referrals_and_beds(
    w, sizes, rng, clinical, specialists, members, doctors, patients, inventory
):
    admissions, nights = [], []
    taken: dict[tuple[int, date], set[int]] = {}
    capacity = {}
    for _id, department, valid_from, _total, shared, _created in inventory:
        capacity.setdefault(department, []).append((valid_from, shared))
    aid = 0
    for _ in range(sizes.admissions):
        department = rng.choice(clinical)
        admit_on = date(YEAR, 1, 1) + timedelta(days=rng.randrange(0, 360))
        stay = rng.randrange(2, 8)
        days = [admit_on + timedelta(days=k) for k in range(stay)]
        cap = min([s for f, s in sorted(capacity[department]) if f <= d][-1] for d in days)
        bed = next(
            (
                b
                for b in range(1, cap + 1)
                if all(b not in taken.get((department, d), set()) for d in days)
            ),
            None,
        )
        if bed is None:
            continue
        aid += 1
        institution = rng.choice(members)
        admissions.append(
            (
                aid,
                department,
                institution,
                patients[institution][aid % len(patients[institution])],
                doctors[institution],
                "bench",
                admit_on,
                stay,
                "discharged",
                bed,
                admit_on,
                admit_on + timedelta(days=stay),
                local(admit_on) - timedelta(days=2),
            )
        )
        for d in days:
            taken.setdefault((department, d), set()).add(bed)
            nights.append((len(nights) + 1, department, d, bed, aid))
    counts = {
        "admissions": w.write(
            "admission",
            [
                "id",
                "department_id",
                "institution_id",
                "patient_id",
                "requested_by_id",
                "reason",
                "wanted_from",
                "nights",
                "status",
                "bed_no",
                "admit_on",
                "discharge_on",
                "created_at",
            ],
            admissions,
        ),
        "bed_nights": w.write(
            "bed_day", ["id", "department_id", "day", "bed_no", "admission_id"], nights
        ),
    }
    rows = []
    start = local(date(YEAR, 1, 1))
    for n in range(1, sizes.referrals + 1):
        up = rng.random() < 0.7
        institution = rng.choice(members)
        specialist, department = rng.choice(specialists)
        opened = start + timedelta(seconds=rng.randrange(365 * 24 * 3600))
        roll = rng.random()
        accepted = opened + timedelta(hours=6) if roll > 0.1 else None
        completed = opened + timedelta(days=5) if roll > 0.3 else None
        followed = opened + timedelta(days=20) if roll > 0.6 else None
        status = (
            "declined"
            if accepted is None
            else "followed_up"
            if followed
            else "completed"
            if completed
            else "accepted"
        )
        rows.append(
            (
                n,
                "up" if up else "down",
                status,
                patients[institution][n % len(patients[institution])],
                institution,
                department,
                doctors[institution] if up else specialist,
                doctors[institution],
                "bench",
                up and roll > 0.85,
                None if up else "plan",
                None if up else opened.date() + timedelta(days=7),
                accepted,
                "declined" if accepted is None else None,
                completed,
                completed,
                followed,
                opened,
            )
        )
    counts["referrals"] = w.write(
        "referral",
        [
            "id",
            "direction",
            "status",
            "patient_id",
            "member_institution_id",
            "department_id",
            "requested_by_id",
            "member_doctor_id",
            "reason",
            "green_channel",
            "follow_up_plan",
            "next_visit_date",
            "accepted_at",
            "closing_reason",
            "scheduled_at",
            "completed_at",
            "followed_up_at",
            "created_at",
        ],
        rows,
    )
    return counts


# -- measuring -----------------------------------------------------------------------------


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    action()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        runs.append((time.perf_counter() - start) * 1000)
    runs.sort()
    return statistics.median(runs), runs[min(len(runs) - 1, round(0.95 * (len(runs) - 1)))]


RAW = {
    "seats": [
        "SELECT s.department_id, s.service_type, count(ss.id), "
        "sum(CASE WHEN ss.pool = 'down_shared' OR ss.released_at IS NOT NULL THEN 1 ELSE 0 END), "
        "sum(CASE WHEN ss.released_at IS NOT NULL THEN 1 ELSE 0 END), "
        "sum(CASE WHEN ss.green_channel THEN 1 ELSE 0 END) "
        "FROM slot s JOIN slot_seat ss ON ss.slot_id = s.id "
        "WHERE s.starts_at >= :a AND s.starts_at < :b AND s.status = 'open' "
        "GROUP BY s.department_id, s.service_type"
    ],
    "bookings": [
        "SELECT s.department_id, s.service_type, b.institution_id, "
        "sum(CASE WHEN b.status IN ('booked', 'checked_in', 'completed', 'no_show') "
        "THEN 1 ELSE 0 END), sum(CASE WHEN b.status = 'no_show' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN b.status = 'cancelled' THEN 1 ELSE 0 END) "
        "FROM booking b JOIN slot s ON s.id = b.slot_id "
        "WHERE b.starts_at >= :a AND b.starts_at < :b AND b.pool = 'down_shared' "
        "GROUP BY s.department_id, s.service_type, b.institution_id"
    ],
    "beds": [
        "SELECT bd.department_id, a.institution_id, bd.day, count(*) FROM bed_day bd "
        "JOIN admission a ON a.id = bd.admission_id WHERE bd.day >= :d1 AND bd.day <= :d2 "
        "GROUP BY bd.department_id, a.institution_id, bd.day",
        "SELECT department_id, institution_id, count(*) FROM admission "
        "WHERE created_at >= :a AND created_at < :b GROUP BY department_id, institution_id",
    ],
    "referrals": [
        "SELECT direction, department_id, member_institution_id, count(*), "
        "sum(CASE WHEN accepted_at IS NOT NULL THEN 1 ELSE 0 END), "
        "sum(CASE WHEN completed_at IS NOT NULL THEN 1 ELSE 0 END) FROM referral "
        "WHERE created_at >= :a AND created_at < :b "
        "GROUP BY direction, department_id, member_institution_id"
    ],
    "reads": [
        "SELECT kind, institution_id, count(*), "
        "sum(CASE WHEN reported_at IS NOT NULL THEN 1 ELSE 0 END) FROM clinical_case "
        "WHERE submitted_at >= :a AND submitted_at < :b GROUP BY kind, institution_id",
        # Portable percentiles need the durations in order: fetch them all.
        "SELECT kind, reported_at, submitted_at FROM clinical_case "
        "WHERE submitted_at >= :a AND submitted_at < :b AND reported_at IS NOT NULL "
        "ORDER BY kind, reported_at",
    ],
}


SNAPSHOT_SEATS = (
    "SELECT department_id, service_type, sum(published_seats), sum(down_shared_seats), "
    "sum(released_seats), sum(green_channel_seats) FROM quota_snapshot "
    "WHERE day >= :d1 AND day <= :d2 GROUP BY department_id, service_type"
)


def take_snapshots() -> tuple[float, float, float]:
    """What the nightly job does, for every day of the year: (total s, p50 ms, p95 ms)."""
    from telemed.services.consortium import quota_figures

    taken_at = datetime(YEAR + 1, 1, 2, tzinfo=UTC)
    runs = []
    day = date(YEAR, 1, 1)
    while day.year == YEAR:
        start = time.perf_counter()
        quota_figures.store_snapshot(day, taken_at)
        db.session.commit()
        runs.append((time.perf_counter() - start) * 1000)
        day += timedelta(days=1)
    total = sum(runs) / 1000
    runs.sort()
    return total, statistics.median(runs), runs[round(0.95 * (len(runs) - 1))]


def measure(
    app, label: str, repeats: int, *, snapshots: bool = False
) -> list[tuple[str, str, tuple, tuple]]:
    periods = {
        "month (Jul)": (
            Period(date(YEAR, 7, 1), date(YEAR, 7, 31)),
            "period=month&anchor=2025-07-15",
        ),
        "year": (
            Period(date(YEAR, 1, 1), date(YEAR, 12, 31)),
            "period=custom&first=2025-01-01&last=2025-12-31",
        ),
    }
    results = []
    with app.app_context():
        token = _admin_token()
        client = app.test_client()
        for name, (period, query) in periods.items():
            results += measure_period(
                client, token, name, period, query, label, repeats, snapshots=snapshots
            )
    return results


def measure_period(client, token, name, period, query, label, repeats, *, snapshots=False):
    from telemed.services.consortium import dashboard, dashboard_tables

    scope = dashboard.Scope(1, period)
    start, end = dashboard.bounds(period)
    params = {"a": start, "b": end, "d1": period.first, "d2": period.last}
    if db.engine.dialect.name == "sqlite":
        params = {
            "a": start.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "b": end.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "d1": period.first.isoformat(),
            "d2": period.last.isoformat(),
        }

    def raw(queries):
        def run():
            for sql in queries:
                db.session.execute(text(sql), params).all()
            db.session.rollback()

        return run

    def view(section):
        def run():
            dashboard.build(scope, sections=frozenset({section}))
            db.session.rollback()

        return run

    def whole():
        dashboard_tables.all_tables(dashboard.build(scope))
        db.session.rollback()

    def page():
        response = client.get(
            f"/admin/dashboard?{query}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.status_code

    results = []
    raws = dict(RAW)
    if snapshots:  # the seats come from the snapshots now, the rest as before
        raws = {"seats": [SNAPSHOT_SEATS]}
        name = f"{name} [snapshots]"
    for section, queries in raws.items():
        results.append(
            (
                f"{name}: {section}",
                label,
                timed(view(section), repeats),
                timed(raw(queries), repeats),
            )
        )
    every = [sql for queries in {**RAW, **raws}.values() for sql in queries]
    floor = timed(raw(every), repeats)
    results.append((f"{name}: all figures and tables", label, timed(whole, repeats), floor))
    results.append((f"{name}: page over HTTP", label, timed(page, repeats), floor))
    return results


def _admin_token() -> str:
    from telemed.models.consortium import User
    from telemed.services.accounts import accounts

    admin = db.session.execute(
        text("SELECT id FROM user_account WHERE username = 'admin'")
    ).scalar_one()
    _row, token = accounts.create_api_token(db.session.get(User, admin), "bench")
    db.session.commit()
    return token


# -- databases -------------------------------------------------------------------------------


def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        path = workdir / "bench-dashboard.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin = create_engine(
        os.environ.get("BENCH_PG_ADMIN_URL", PG_ADMIN_URL), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    return (
        make_url(os.environ.get("BENCH_PG_ADMIN_URL", PG_ADMIN_URL))
        .set(database=BENCH_DB)
        .render_as_string(hide_password=False)
    )


def app_for(url: str, workdir: Path):
    os.environ["TELEMED_INSTANCE_DIR"] = str(workdir / "instance")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": False})
    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--slots", type=int, default=1_000_000)
    parser.add_argument("--bookings", type=int, default=300_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--referrals", type=int, default=10_000)
    parser.add_argument("--admissions", type=int, default=5_000)
    parser.add_argument("--patients", type=int, default=60_000)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--departments", type=int, default=8)
    parser.add_argument("--specialists", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="measure the database left by a previous run"
    )
    sizes = parser.parse_args()
    workdir = sizes.workdir or Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    workdir.mkdir(parents=True, exist_ok=True)
    kinds = ["sqlite", "postgresql"] if sizes.db == "both" else [sizes.db]
    rows = []
    for kind in kinds:
        if sizes.reuse:
            url = (
                f"sqlite:///{workdir / 'bench-dashboard.sqlite'}"
                if kind == "sqlite"
                else make_url(PG_ADMIN_URL).set(database=BENCH_DB).render_as_string(False)
            )
            app = app_for(url, workdir)
        else:
            url = fresh_database(kind, workdir)
            app = app_for(url, workdir)
            from flask_migrate import upgrade

            with app.app_context():
                upgrade()
            began = time.perf_counter()
            counts = generate(app, sizes)
            took = time.perf_counter() - began
            print(
                f"[{kind}] generated in {took:.0f} s: "
                + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
                flush=True,
            )
        rows += measure(app, kind, sizes.repeats)
        with app.app_context():
            total, p50, p95 = take_snapshots()
            print(
                f"[{kind}] nightly snapshots for {YEAR}: {total:.1f} s in all, "
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms per day",
                flush=True,
            )
        rows += measure(app, kind, sizes.repeats, snapshots=True)
        with app.app_context():
            db.engine.dispose()
    print()
    print(
        f"{'view':<52} {'db':<10} {'view p50':>9} {'p95':>9}   {'raw SQL p50':>11} "
        f"{'p95':>9}   {'ratio':>6}"
    )
    for name, kind, view, raw in rows:
        ratio = view[0] / raw[0] if raw[0] else float("inf")
        print(
            f"{name:<52} {kind:<10} {view[0]:9.1f} {view[1]:9.1f}   {raw[0]:11.1f} "
            f"{raw[1]:9.1f}   x{ratio:5.2f}"
        )


if __name__ == "__main__":
    main()
