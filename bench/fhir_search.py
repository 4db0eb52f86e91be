"""FHIR searches side by side with the JSON API answering the same question.

Seeds the demo consortium into a fresh database (SQLite in a temporary folder, or the
PostgreSQL database named by TELEMED_BENCH_DATABASE_URL, which must be empty), serves
the app with waitress in this process, and times sequential requests as a grassroots
doctor: free slots of the next two weeks, and the institution's bookings. Prints p50
and p99 per endpoint; the FHIR/API ratio is the cost of the FHIR rendering.

    .venv/bin/python bench/fhir_search.py [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import time as dt_time
from datetime import timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TELEMED_INSTANCE_DIR", tempfile.mkdtemp(prefix="telemed-bench-"))
os.environ["TELEMED_RUN_SCHEDULER"] = "0"

from flask_migrate import upgrade
from waitress import create_server

from telemed import clock, create_app
from telemed.extensions import db
from telemed.i18n import consortium_zone
from telemed.models.consortium import Role, User
from telemed.models.scheduling import ServiceType, Slot
from telemed.services.accounts import accounts
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import publishing


def publish_more(weeks: int) -> None:
    """Every specialist's mornings, every day, for ``weeks`` after the demo's four."""
    zone = consortium_zone()
    first = clock.now().astimezone(zone).date() + timedelta(weeks=5)
    specialists = db.session.execute(
        db.select(User).where(User.role == Role.SPECIALIST).order_by(User.id)
    ).scalars()
    for specialist in list(specialists):
        for chunk in range(0, weeks, publishing.MAX_WEEKS):
            start = first + timedelta(weeks=chunk)
            length = min(publishing.MAX_WEEKS, weeks - chunk)
            publishing.publish_schedule(
                actor_of(specialist),
                publishing.ScheduleRequest(
                    specialist_id=specialist.id,
                    service_type=ServiceType.OUTPATIENT,
                    weekdays=list(range(7)),
                    start_time=dt_time(8, 0),
                    end_time=dt_time(12, 0),
                    slot_minutes=30,
                    seats_per_slot=3,
                    valid_from=start,
                    valid_until=start + timedelta(weeks=length) - timedelta(days=1),
                ),
            )
        db.session.commit()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(session: requests.Session, url: str, params, total_of, count: int):
    latencies, total = [], None
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, params=params, timeout=60)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        total = total_of(response.json())
    return latencies, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--weeks", type=int, default=0, help="publish this many more weeks of slots"
    )
    args = parser.parse_args()
    url = os.environ.get("TELEMED_BENCH_DATABASE_URL") or (
        f"sqlite:///{Path(os.environ['TELEMED_INSTANCE_DIR']) / 'bench.sqlite'}"
    )
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        from telemed import demo

        demo.seed()
        db.session.commit()
        publish_more(args.weeks)
        doctor = (
            db.session.execute(
                db.select(User).where(User.role == Role.GRASSROOTS).order_by(User.id)
            )
            .scalars()
            .first()
        )
        _row, token = accounts.create_api_token(doctor, "bench")
        db.session.commit()
        slots = db.session.execute(db.select(db.func.count()).select_from(Slot)).scalar_one()
        today = clock.now().astimezone(consortium_zone()).date()
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    base = f"http://127.0.0.1:{server.effective_port}"
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    until = today + timedelta(days=13)
    cases = [
        (
            "free slots, 2 weeks",
            (f"{base}/api/slots", {"date_from": today, "date_to": until, "limit": 50}),
            lambda body: body["meta"]["total"],
            (
                f"{base}/fhir/Slot",
                [
                    ("start", f"ge{today}"),
                    ("start", f"le{until}"),
                    ("status", "free"),
                    ("_count", 50),
                ],
            ),
        ),
        (
            "bookings, first page",
            (f"{base}/api/bookings", {"limit": 50}),
            lambda body: body["meta"]["total"],
            (f"{base}/fhir/Appointment", {"_count": 50}),
        ),
    ]
    print(
        f"database: {url.split(':', 1)[0]}; "
        f"{slots} slots; {args.requests} sequential requests each; times in ms"
    )
    print(
        f"{'question':24} {'API p50':>8} {'API p99':>8} {'FHIR p50':>9} {'FHIR p99':>9} "
        f"{'ratio p50':>9}  totals"
    )
    try:
        for name, (api_url, api_params), api_total, (fhir_url, fhir_params) in cases:
            timed(session, api_url, api_params, api_total, 5)  # warm up
            api, api_count = timed(session, api_url, api_params, api_total, args.requests)
            fhir, fhir_count = timed(
                session, fhir_url, fhir_params, lambda body: body["total"], args.requests
            )
            print(
                f"{name:24} {statistics.median(api):8.1f} {percentile(api, 0.99):8.1f} "
                f"{statistics.median(fhir):9.1f} {percentile(fhir, 0.99):9.1f} "
                f"{statistics.median(fhir) / statistics.median(api):9.2f}  "
                f"{api_count} / {fhir_count}"
            )
    finally:
        server.close()
        thread.join(timeout=5)


if __name__ == "__main__":
    main()
