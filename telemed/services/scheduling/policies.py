"""Department policies: the version in force at a moment, and versioned changes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from datetime import datetime
from fractions import Fraction

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from telemed import clock
from telemed.domain.access import Actor
from telemed.domain.booking_rules import BookingWindows
from telemed.domain.downshare import share_floor_missed
from telemed.errors import Forbidden, InvalidInput
from telemed.extensions import db
from telemed.models.consortium import Institution, User
from telemed.models.scheduling import DepartmentPolicy, PolicyAllotment
from telemed.services.accounts import audit, scopes

# Bounds that keep an admin's typo from stopping the hospital (hours unless named).
LIMITS = {
    "early_access_days": (0, 90),
    "hospital_booking_days": (1, 180),
    "release_cutoff_hours": (0, 24 * 30),
    "cancel_notice_hours": (0, 24 * 14),
    "hold_minutes": (1, 60),
    "offer_minutes": (5, 24 * 60),
    "no_show_grace_minutes": (0, 24 * 60),
    # Down-shared seats per outpatient slot kept for green-channel referrals.
    "green_channel_seats_per_slot": (0, 20),
    # Reading centres (minutes from a read being sent to its report).
    "read_deadline_critical_minutes": (1, 240),
    "read_deadline_urgent_minutes": (5, 48 * 60),
    "read_deadline_routine_minutes": (60, 14 * 24 * 60),
}
MAX_ALLOTMENT = 20


def default_policy(department_id: int) -> DepartmentPolicy:
    """The policy of a department nobody has configured (not added to the session)."""
    return DepartmentPolicy(
        department_id=department_id,
        valid_from=datetime.min.replace(tzinfo=clock.now().tzinfo),
        outpatient_share_num=1,
        outpatient_share_den=3,
        bed_share_num=1,
        bed_share_den=4,
        early_access_days=14,
        hospital_booking_days=7,
        release_cutoff_hours=48,
        cancel_notice_hours=2,
        hold_minutes=5,
        offer_minutes=30,
        no_show_grace_minutes=30,
        green_channel_seats_per_slot=0,
        read_deadline_critical_minutes=15,
        read_deadline_urgent_minutes=120,
        read_deadline_routine_minutes=24 * 60,
    )


def policy_in_force(department_id: int, at: datetime | None = None) -> DepartmentPolicy:
    moment = at or clock.now()
    query = (
        select(DepartmentPolicy)
        .where(DepartmentPolicy.department_id == department_id)
        .where(DepartmentPolicy.valid_from <= moment)
        .order_by(DepartmentPolicy.valid_from.desc(), DepartmentPolicy.id.desc())
        .limit(1)
    )
    return db.session.execute(query).scalar_one_or_none() or default_policy(department_id)


def outpatient_share(policy: DepartmentPolicy) -> Fraction:
    return Fraction(policy.outpatient_share_num, policy.outpatient_share_den)


def bed_share(policy: DepartmentPolicy) -> Fraction:
    return Fraction(policy.bed_share_num, policy.bed_share_den)


def windows_of(policy: DepartmentPolicy) -> BookingWindows:
    return BookingWindows(**{f.name: getattr(policy, f.name) for f in fields(BookingWindows)})


def change_policy(
    actor: Actor,
    department_id: int,
    *,
    reason: str | None,
    outpatient_share: Fraction | None = None,
    bed_share: Fraction | None = None,
    allotments: dict[int, int] | None = None,
    **settings: int,
) -> DepartmentPolicy:
    """Append a new version of the department's policy, in force from now.

    ``allotments`` (member institution id → down-shared seats per slot) replaces the
    default allotments as a whole; left out, the current ones carry over.
    """
    if not actor.is_admin:
        raise Forbidden(_l("only admins change department policies"))
    department = scopes.get_department(actor, department_id, field="department_id")
    current = policy_in_force(department.id)
    new = DepartmentPolicy(
        department_id=department.id,
        valid_from=clock.now(),
        changed_by_id=actor.user_id,
        reason=(reason or "").strip() or None,
    )
    for column in (
        "outpatient_share_num",
        "outpatient_share_den",
        "bed_share_num",
        "bed_share_den",
        *LIMITS,
    ):
        setattr(new, column, getattr(current, column))
    for name, share in (("outpatient_share", outpatient_share), ("bed_share", bed_share)):
        if share is None:
            continue
        if not 0 <= share <= 1:
            raise InvalidInput(_l("%(name)s must lie between 0 and 1", name=name), field=name)
        floor = share_floor_missed(name, share)
        if floor is not None:
            raise InvalidInput(
                _l(
                    "%(name)s must be at least %(floor)s (the down-share floor)",
                    name=name,
                    floor=floor,
                ),
                field=name,
            )
        setattr(new, f"{name}_num", share.numerator)
        setattr(new, f"{name}_den", share.denominator)
    for name, value in settings.items():
        if name not in LIMITS:
            raise InvalidInput(_l("unknown policy setting %(name)s", name=name), field=name)
        low, high = LIMITS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidInput(
                _l(
                    "%(name)s must be a whole number from %(low)s to %(high)s",
                    name=name,
                    low=low,
                    high=high,
                ),
                field=name,
            )
        setattr(new, name, value)
    if allotments is None:
        allotments = allotments_of(current)
    new.allotments = [
        PolicyAllotment(institution_id=inst, seats_per_slot=seats)
        for inst, seats in sorted(_checked_allotments(actor, allotments).items())
    ]
    _check_deadline_order(new)
    db.session.add(new)
    db.session.flush()
    audit.record(
        actor,
        "update",
        "department_policy",
        department.id,
        detail={
            "old": _describe(current),
            "new": _describe(new),
            "reason": new.reason,
        },
    )
    return new


def allotments_of(policy: DepartmentPolicy) -> dict[int, int]:
    """Default allotments of a policy version: member institution id → seats per slot."""
    return {a.institution_id: a.seats_per_slot for a in policy.allotments}


def _checked_allotments(actor: Actor, allotments: dict[int, int]) -> dict[int, int]:
    if not allotments:
        return {}
    members = {
        inst.id
        for inst in db.session.execute(
            select(Institution).where(
                Institution.id.in_(list(allotments)),
                Institution.consortium_id == actor.consortium_id,
            )
        ).scalars()
        if inst.is_member
    }
    for institution_id, seats in allotments.items():
        if institution_id not in members:
            raise InvalidInput(
                _l(
                    "institution %(institution_id)s is not a member institution of the consortium",
                    institution_id=institution_id,
                ),
                field="allotments",
            )
        if isinstance(seats, bool) or not isinstance(seats, int):
            raise InvalidInput(_l("allotments are whole numbers of seats"), field="allotments")
        if not 1 <= seats <= MAX_ALLOTMENT:
            raise InvalidInput(
                _l(
                    "an allotment is 1 to %(limit)s seats per slot",
                    limit=MAX_ALLOTMENT,
                ),
                field="allotments",
            )
    return dict(allotments)


DEADLINE_ORDER = (
    "read_deadline_critical_minutes",
    "read_deadline_urgent_minutes",
    "read_deadline_routine_minutes",
)


def _check_deadline_order(policy: DepartmentPolicy) -> None:
    """A critical read may never be given longer than an urgent one, nor urgent than routine."""
    for shorter, longer in itertools.pairwise(DEADLINE_ORDER):
        if getattr(policy, shorter) > getattr(policy, longer):
            raise InvalidInput(
                _l(
                    "%(shorter)s (%(shorter_value)s) may not exceed %(longer)s (%(longer_value)s)",
                    shorter=shorter,
                    shorter_value=getattr(policy, shorter),
                    longer=longer,
                    longer_value=getattr(policy, longer),
                ),
                field=shorter,
            )


def _describe(policy: DepartmentPolicy) -> dict[str, object]:
    return {
        "outpatient_share": f"{policy.outpatient_share_num}/{policy.outpatient_share_den}",
        "bed_share": f"{policy.bed_share_num}/{policy.bed_share_den}",
        **{name: getattr(policy, name) for name in LIMITS},
        "allotments": "; ".join(
            f"{a.institution.name}: {a.seats_per_slot}"
            for a in sorted(policy.allotments, key=lambda a: a.institution_id)
        )
        or "–",
    }


@dataclass(frozen=True)
class PolicyVersion:
    """One version of a department's policy and what it changed from the one before."""

    policy: DepartmentPolicy
    changed_by: str | None
    changes: list[tuple[str, object, object]]  # (setting, old, new)


def policy_history(actor: Actor, department_id: int) -> list[PolicyVersion]:
    """Every version of the department's policy, newest first, with its changes."""
    department = scopes.get_department(actor, department_id, field="department_id")
    rows = db.session.execute(
        select(DepartmentPolicy, User.display_name)
        .outerjoin(User, User.id == DepartmentPolicy.changed_by_id)
        .where(DepartmentPolicy.department_id == department.id)
        .order_by(DepartmentPolicy.valid_from, DepartmentPolicy.id)
    ).all()
    previous = _describe(default_policy(department.id))
    versions = []
    for policy, who in rows:
        current = _describe(policy)
        changes = [
            (name, previous[name], value)
            for name, value in current.items()
            if previous[name] != value
        ]
        versions.append(PolicyVersion(policy, who, changes))
        previous = current
    return list(reversed(versions))
