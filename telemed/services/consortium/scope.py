"""What belongs to one consortium, as subqueries a scheduled job narrows its work with.

An installation may serve several consortia; a job run for one of them (the scheduled
run of each, or "run now" from a consortium admin's page) touches only rows whose
institution is that consortium's. ``None`` means every consortium (the operator's CLI).
"""

from __future__ import annotations

from sqlalchemy import Select, select

from telemed.extensions import db
from telemed.models.consortium import Consortium, Department, Institution
from telemed.models.scheduling import Slot


def consortium_ids() -> list[int]:
    return list(db.session.execute(select(Consortium.id).order_by(Consortium.id)).scalars())


def institution_ids(consortium_id: int) -> Select:
    return select(Institution.id).where(Institution.consortium_id == consortium_id)


def department_ids(consortium_id: int) -> Select:
    return (
        select(Department.id)
        .join(Institution, Institution.id == Department.institution_id)
        .where(Institution.consortium_id == consortium_id)
    )


def slot_ids(consortium_id: int) -> Select:
    return select(Slot.id).where(Slot.department_id.in_(department_ids(consortium_id)))
