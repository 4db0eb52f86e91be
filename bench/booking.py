"""Booking benchmark: a real server with several workers, on SQLite and PostgreSQL.

(a) 200 concurrent clients race for 20 down-shared seats: successes, p50/p99 latency,
    and the invariants checked in the database afterwards;
(b) sustained bookings per second from many clients;
(c) slot search p50/p99 through the API with 1,000,000 slots in the database, side by side
    with the very same SQL run directly on a database connection (the ratio is the figure).

Prints figures; asserts nothing about speed. Usage:

    .venv/bin/python bench/booking.py --db both --slots 1000000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get(
    "TELEMED_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(value: float) -> str:
    return f"{value * 1000:8.1f} ms"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Target:
    name: str
    url: str
    instance: Path


def prepare_database(kind: str, workdir: Path) -> Target:
    instance = workdir / f"instance-{kind}"
    instance.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        return Target("SQLite", f"sqlite:///{workdir / 'bench.sqlite'}", instance)
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(PG_ADMIN_URL)
    name = "telemed_bench"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return Target("PostgreSQL", base.set(database=name).render_as_string(False), instance)


def environment(target: Target) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TELEMED_DATABASE_URL=target.url,
        TELEMED_INSTANCE_DIR=str(target.instance),
        TELEMED_SECRET_KEY="bench-" + secrets.token_hex(8),
        TELEMED_DEMO_PASSWORD="bench-password-1",
        TELEMED_RUN_SCHEDULER="0",
    )
    env.pop("TELEMED_REDIS_URL", None)
    return env


# -- data -------------------------------------------------------------------------------------


@dataclass
class Fixture:
    token: str
    race_slot: int
    race_patients: list[int]
    sustained_slots: list[int]
    sustained_patients: list[int]
    search_department: int


def build_fixture(app, *, race_clients: int, race_seats: int, sustained_patients: int) -> Fixture:
    """The demo consortium, a bench specialist, and patients; created through the services."""
    from datetime import time as clock_time

    from sqlalchemy import select

    from telemed import demo
    from telemed.extensions import db
    from telemed.models import Department, Institution, Patient, Role, Slot, User
    from telemed.models.scheduling import ServiceType
    from telemed.services.accounts import accounts
    from telemed.services.accounts.context import actor_of
    from telemed.services.scheduling import publishing

    with app.app_context():
        demo.seed()
        card = db.session.execute(select(Department).where(Department.code == "CARD")).scalar_one()
        lead = db.session.get(Institution, card.institution_id)
        bench = User(
            username="bench.specialist",
            display_name="Bench",
            role=Role.SPECIALIST,
            institution_id=lead.id,
            department_id=card.id,
            password_hash="!",
        )
        db.session.add(bench)
        db.session.flush()
        doctor = db.session.execute(select(User).where(User.username == "gp1a")).scalar_one()
        zone_today = date.today()
        race_day = zone_today + timedelta(days=5)
        race = publishing.publish_schedule(
            actor_of(bench),
            publishing.ScheduleRequest(
                specialist_id=bench.id,
                service_type=ServiceType.OUTPATIENT,
                weekdays=[race_day.weekday()],
                start_time=clock_time(6, 0),
                end_time=clock_time(6, 30),
                slot_minutes=30,
                seats_per_slot=race_seats * 3,
                down_shared_per_slot=race_seats,
                valid_from=race_day,
                valid_until=race_day,
            ),
        )
        sustained = publishing.publish_schedule(
            actor_of(bench),
            publishing.ScheduleRequest(
                specialist_id=bench.id,
                service_type=ServiceType.OUTPATIENT,
                weekdays=list(range(7)),
                start_time=clock_time(7, 0),
                end_time=clock_time(21, 0),
                slot_minutes=30,
                seats_per_slot=30,
                down_shared_per_slot=10,
                valid_from=zone_today + timedelta(days=1),
                valid_until=zone_today + timedelta(days=14),
            ),
        )
        patients = [
            Patient(institution_id=doctor.institution_id, name=f"bench-{i}")
            for i in range(race_clients + sustained_patients)
        ]
        db.session.add_all(patients)
        db.session.flush()
        _row, token = accounts.create_api_token(doctor, "bench")

        def slot_ids(schedule_id):
            return list(
                db.session.execute(
                    select(Slot.id).where(Slot.schedule_id == schedule_id).order_by(Slot.starts_at)
                ).scalars()
            )

        fixture = Fixture(
            token=token,
            race_slot=slot_ids(race.schedule.id)[0],
            race_patients=[p.id for p in patients[:race_clients]],
            sustained_slots=slot_ids(sustained.schedule.id),
            sustained_patients=[p.id for p in patients[race_clients:]],
            search_department=card.id,
        )
        db.session.commit()
        return fixture


def bulk_slots(app, total: int) -> tuple[float, int]:
    """Fill the ledger with ``total`` slots (3 seats each) in one SQL statement per table."""
    from sqlalchemy import select, text

    from telemed.extensions import db
    from telemed.models import Department, Role, User

    started = time.perf_counter()
    with app.app_context():
        departments = db.session.execute(
            select(Department.id, Department.institution_id).where(Department.reads.is_(None))
        ).all()
        specialists = []
        per_department = 14
        for department_id, institution_id in departments:
            for n in range(per_department):
                user = User(
                    username=f"bulk-{department_id}-{n}",
                    display_name=f"Bulk {n}",
                    role=Role.SPECIALIST,
                    institution_id=institution_id,
                    department_id=department_id,
                    password_hash="!",
                )
                db.session.add(user)
                db.session.flush()
                specialists.append((user.id, department_id))
        db.session.commit()
        per_specialist = -(-total // len(specialists))
        # Ten-minute slots, 08:00-18:00 local (00:00-10:00 UTC), day after day, from tomorrow.
        first_day = datetime.combine(date.today() + timedelta(days=1), datetime.min.time())
        dialect = db.engine.dialect.name
        for specialist_id, department_id in specialists:
            if dialect == "postgresql":
                sql = """
                    INSERT INTO slot (specialist_id, department_id, service_type, starts_at,
                                      ends_at, status, created_at)
                    SELECT :sid, :did, 'outpatient',
                           (CAST(:first AS timestamp) + (n / 60) * interval '1 day'
                            + (n % 60) * interval '10 minutes') AT TIME ZONE 'UTC',
                           (CAST(:first AS timestamp) + (n / 60) * interval '1 day'
                            + (n % 60 + 1) * interval '10 minutes') AT TIME ZONE 'UTC',
                           'open', now()
                    FROM generate_series(0, :count - 1) AS n
                """
            else:
                sql = """
                    WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq
                                               WHERE n + 1 < :count)
                    INSERT INTO slot (specialist_id, department_id, service_type, starts_at,
                                      ends_at, status, created_at)
                    SELECT :sid, :did, 'outpatient',
                           strftime('%Y-%m-%d %H:%M:%S', :first, (n / 60) || ' days',
                                    ((n % 60) * 10) || ' minutes') || '.000000',
                           strftime('%Y-%m-%d %H:%M:%S', :first, (n / 60) || ' days',
                                    ((n % 60) * 10 + 10) || ' minutes') || '.000000',
                           'open', strftime('%Y-%m-%d %H:%M:%S', 'now') || '.000000'
                    FROM seq
                """
            db.session.execute(
                text(sql),
                {
                    "sid": specialist_id,
                    "did": department_id,
                    "first": first_day.isoformat(sep=" "),
                    "count": per_specialist,
                },
            )
            db.session.commit()
        db.session.execute(
            text(
                """
                INSERT INTO slot_seat (slot_id, seat_no, pool, allotted_institution_id)
                SELECT s.id, k.seat_no,
                       CASE WHEN k.seat_no = 1 THEN 'down_shared' ELSE 'hospital' END, NULL
                FROM slot s CROSS JOIN (SELECT 1 AS seat_no UNION ALL SELECT 2 UNION ALL SELECT 3) k
                WHERE s.specialist_id IN (SELECT id FROM user_account WHERE username LIKE 'bulk-%')
                """
            )
        )
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return time.perf_counter() - started, per_specialist // 60


# -- the server -----------------------------------------------------------------------------


class Server:
    def __init__(self, env: dict[str, str], workers: int, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/login", timeout=2).status_code == 200:
                    return
            except requests.RequestException:  # still starting: workers import the app
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- the runs -------------------------------------------------------------------------------


def run_race(server: Server, fixture: Fixture) -> dict:
    headers = {"Authorization": f"Bearer {fixture.token}"}
    barrier = threading.Barrier(len(fixture.race_patients))

    def book(patient_id: int):
        with requests.Session() as http:
            barrier.wait()
            started = time.perf_counter()
            response = http.post(
                server.url + "/api/bookings",
                json={"slot_id": fixture.race_slot, "patient_id": patient_id},
                headers=headers,
                timeout=120,
            )
            return response.status_code, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=len(fixture.race_patients)) as pool:
        results = list(pool.map(book, fixture.race_patients))
    latencies = [elapsed for _, elapsed in results]
    codes: dict[int, int] = {}
    for code, _ in results:
        codes[code] = codes.get(code, 0) + 1
    return {"codes": codes, "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


def check_invariants(app, fixture: Fixture, seats: int) -> list[str]:
    from sqlalchemy import func, select

    from telemed.extensions import db
    from telemed.models import OCCUPYING_STATUSES, Booking

    problems = []
    with app.app_context():
        occupying = db.session.execute(
            select(Booking.slot_id, func.count(), func.count(func.distinct(Booking.seat_id)))
            .where(Booking.status.in_(OCCUPYING_STATUSES))
            .group_by(Booking.slot_id)
        ).all()
        for slot_id, count, distinct_seats in occupying:
            if count != distinct_seats:
                problems.append(f"slot {slot_id}: {count} bookings on {distinct_seats} seats")
            if slot_id == fixture.race_slot and count != seats:
                problems.append(f"race slot holds {count} bookings, expected {seats}")
        doubles = db.session.execute(
            select(Booking.patient_id, func.count())
            .where(Booking.status.in_(OCCUPYING_STATUSES))
            .group_by(Booking.patient_id)
            .having(func.count() > 1)
        ).all()
        problems += [f"patient {pid} holds {n} bookings" for pid, n in doubles]
    return problems


def run_sustained(server: Server, fixture: Fixture, clients: int, seconds: float) -> dict:
    headers = {"Authorization": f"Bearer {fixture.token}"}
    work = iter(zip(fixture.sustained_patients, fixture.sustained_slots * 10, strict=False))
    lock = threading.Lock()
    latencies: list[float] = []
    successes = 0
    conflicts = 0
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal successes, conflicts
        with requests.Session() as http:
            while time.perf_counter() < deadline:
                with lock:
                    item = next(work, None)
                if item is None:
                    return
                patient_id, slot_id = item
                started = time.perf_counter()
                response = http.post(
                    server.url + "/api/bookings",
                    json={"slot_id": slot_id, "patient_id": patient_id},
                    headers=headers,
                    timeout=60,
                )
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status_code == 201:
                        successes += 1
                    elif response.status_code == 409:
                        conflicts += 1
                    else:
                        raise RuntimeError(f"unexpected {response.status_code}: {response.text}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "per_second": successes / wall,
        "successes": successes,
        "conflicts": conflicts,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


def raw_statement(statement, dialect):
    """The SQL string and driver parameters SQLAlchemy would send for ``statement``."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors
    processed = {
        key: processors[key](value) if key in processors else value for key, value in params.items()
    }
    if dialect.positional:
        return compiled.string, tuple(processed[name] for name in compiled.positiontup)
    return compiled.string, processed


def run_search(app, server: Server, fixture: Fixture, repeats: int, days_filled: int) -> dict:
    from sqlalchemy import func, select

    from telemed.extensions import db
    from telemed.models import Slot, User
    from telemed.models.scheduling import Pool
    from telemed.services.accounts.context import actor_of
    from telemed.services.scheduling.booking import (
        Availability,
        SlotFilter,
        slot_availability_query,
    )

    headers = {"Authorization": f"Bearer {fixture.token}"}
    rng = random.Random(7)
    windows = []
    for _ in range(repeats):
        first = date.today() + timedelta(days=rng.randrange(1, max(2, days_filled - 7)))
        windows.append((first, first + timedelta(days=6)))

    api_times = []
    with requests.Session() as http:
        for day_from, day_to in windows:
            started = time.perf_counter()
            response = http.get(
                server.url + "/api/slots",
                params={
                    "date_from": day_from.isoformat(),
                    "date_to": day_to.isoformat(),
                    "department_id": fixture.search_department,
                    "limit": 50,
                },
                headers=headers,
                timeout=60,
            )
            api_times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(response.text)
        found = response.json()["meta"]["total"]

    sql_times = []
    with app.app_context():
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(app.config["TELEMED_TIMEZONE"])
        doctor = db.session.execute(select(User).where(User.username == "gp1a")).scalar_one()
        actor = actor_of(doctor)
        dialect = db.engine.dialect
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            for day_from, day_to in windows:
                now = datetime.now(ZoneInfo("UTC"))
                filters = SlotFilter(
                    starts_from=max(datetime.combine(day_from, datetime.min.time(), zone), now),
                    starts_before=datetime.combine(
                        day_to + timedelta(days=1), datetime.min.time(), zone
                    ),
                    department_ids=(fixture.search_department,),
                    availability=(Availability.FREE,),
                )
                query, order = slot_availability_query(actor, filters, [Pool.DOWN_SHARED], now)
                count_sql = raw_statement(
                    select(func.count()).select_from(query.order_by(None).subquery()), dialect
                )
                page_sql = raw_statement(query.order_by(*order).limit(50), dialect)
                started = time.perf_counter()
                cursor.execute(*count_sql)
                cursor.fetchall()
                cursor.execute(*page_sql)
                cursor.fetchall()
                sql_times.append(time.perf_counter() - started)
            connection.rollback()
        finally:
            connection.close()
        slots = db.session.execute(select(func.count()).select_from(Slot)).scalar_one()
    return {
        "slots": slots,
        "found_per_search": found,
        "api_p50": percentile(api_times, 50),
        "api_p99": percentile(api_times, 99),
        "sql_p50": percentile(sql_times, 50),
        "sql_p99": percentile(sql_times, 99),
    }


def bench_database(kind: str, args) -> None:
    from telemed import create_app

    workdir = Path(tempfile.mkdtemp(prefix=f"telemed-bench-{kind}-"))
    try:
        target = prepare_database(kind, workdir)
        env = environment(target)
        subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        os.environ.update({k: v for k, v in env.items() if k.startswith("TELEMED_")})
        app = create_app({"SQLALCHEMY_DATABASE_URI": target.url})
        fixture = build_fixture(
            app,
            race_clients=args.clients,
            race_seats=args.seats,
            sustained_patients=args.sustained_patients,
        )
        fill, days_filled = bulk_slots(app, args.slots) if args.slots else (0.0, 14)
        server = Server(env, args.workers, args.threads)
        try:
            race = run_race(server, fixture)
            problems = check_invariants(app, fixture, args.seats)
            sustained = run_sustained(server, fixture, args.sustained_clients, args.duration)
            problems += check_invariants(app, fixture, args.seats)
            search = run_search(app, server, fixture, args.search_repeats, days_filled)
        finally:
            server.stop()
        print(f"\n== {target.name} — gunicorn {args.workers} workers × {args.threads} threads ==")
        print(f"(a) {args.clients} clients race for {args.seats} seats: {race['codes']}")
        print(f"    latency p50 {ms(race['p50'])}   p99 {ms(race['p99'])}")
        print(f"    invariants after the race and the sustained run: {problems or 'all hold'}")
        print(
            f"(b) sustained, {args.sustained_clients} clients for {args.duration:.0f} s: "
            f"{sustained['per_second']:.1f} bookings/s "
            f"({sustained['successes']} booked, {sustained['conflicts']} full)"
        )
        print(f"    latency p50 {ms(sustained['p50'])}   p99 {ms(sustained['p99'])}")
        print(
            f"(c) search with {search['slots']:,} slots ({fill:.0f} s to load), "
            f"{search['found_per_search']} matches per search, {args.search_repeats} searches"
        )
        print(f"    API        p50 {ms(search['api_p50'])}   p99 {ms(search['api_p99'])}")
        print(f"    SQL alone  p50 {ms(search['sql_p50'])}   p99 {ms(search['sql_p99'])}")
        print(
            f"    ratio API/SQL p50 {search['api_p50'] / search['sql_p50']:.2f}   "
            f"p99 {search['api_p99'] / search['sql_p99']:.2f}"
        )
        from telemed.extensions import db

        with app.app_context():
            db.engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--slots", type=int, default=1_000_000, help="slots for the search run")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seats", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sustained-clients", type=int, default=32)
    parser.add_argument("--sustained-patients", type=int, default=3000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--search-repeats", type=int, default=200)
    args = parser.parse_args()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        bench_database(kind, args)


if __name__ == "__main__":
    main()
