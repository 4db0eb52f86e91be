"""The single-runner lease: one row in the database names the process that runs jobs.

Taking or renewing it is one conditional statement: an UPDATE that succeeds only for the
holder or once the lease has expired, or, when no row exists yet, an INSERT that the
primary key arbitrates. The holder renews it every third of its lifetime; when the
holder dies, the row expires and the next process to try takes it over. Lease times are
real time (``clock.wall_now``): liveness between processes must not follow a test's
business clock.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import case, insert, select, update
from sqlalchemy.exc import IntegrityError

from telemed import clock
from telemed.extensions import db
from telemed.models.jobs import SchedulerLease

LEASE_NAME = "scheduler"


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def try_acquire(holder: str, ttl: timedelta, name: str = LEASE_NAME) -> bool:
    """Take or renew the lease for ``holder``; commits. True when ``holder`` holds it."""
    now = clock.wall_now()
    taken = db.session.execute(
        update(SchedulerLease)
        .where(
            SchedulerLease.name == name,
            (SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now),
        )
        .values(
            acquired_at=case(
                (SchedulerLease.holder == holder, SchedulerLease.acquired_at), else_=now
            ),
            holder=holder,
            renewed_at=now,
            expires_at=now + ttl,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken == 1:
        db.session.commit()
        return True
    exists = db.session.execute(
        select(SchedulerLease.name).where(SchedulerLease.name == name)
    ).first()
    if exists is not None:
        db.session.commit()
        return False
    try:
        db.session.execute(
            insert(SchedulerLease).values(
                name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=now + ttl
            )
        )
        db.session.commit()
        return True
    except IntegrityError:  # another process inserted it first
        db.session.rollback()
        return False


def holds(holder: str, name: str = LEASE_NAME) -> bool:
    """Whether ``holder`` holds an unexpired lease (read in the caller's transaction)."""
    row = db.session.get(SchedulerLease, name, populate_existing=True)
    return row is not None and row.holder == holder and row.expires_at > clock.wall_now()


def give_up(holder: str, name: str = LEASE_NAME) -> None:
    """Let the lease go at once (clean shutdown), so another process takes over quickly."""
    db.session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .values(expires_at=clock.wall_now() - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def current(name: str = LEASE_NAME) -> SchedulerLease | None:
    return db.session.get(SchedulerLease, name, populate_existing=True)


def is_live(lease: SchedulerLease | None, at: datetime | None = None) -> bool:
    return lease is not None and lease.expires_at > (at or clock.wall_now())
