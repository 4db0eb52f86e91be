"""Consortium-wide settings: the no-show policy and reminder lead times, versioned."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from telemed import clock
from telemed.domain.access import Actor
from telemed.errors import Forbidden, InvalidInput
from telemed.extensions import db
from telemed.models.attendance import ConsortiumPolicy
from telemed.services.accounts import audit

# Bounds that keep a typo from suspending every patient or spamming every doctor.
LIMITS = {
    "no_show_limit": (1, 20),
    "no_show_window_days": (7, 730),
    "suspension_days": (0, 365),  # 0: count no-shows but never suspend
    "reminder_early_minutes": (0, 7 * 24 * 60),  # 0 turns this reminder off
    "reminder_late_minutes": (0, 24 * 60),
}

DEFAULTS = {
    "no_show_limit": 3,
    "no_show_window_days": 365,
    "suspension_days": 30,
    "reminder_early_minutes": 24 * 60,
    "reminder_late_minutes": 30,
}


def default_policy(consortium_id: int) -> ConsortiumPolicy:
    """The policy of a consortium nobody has configured (not added to the session)."""
    return ConsortiumPolicy(
        consortium_id=consortium_id,
        valid_from=datetime.min.replace(tzinfo=clock.now().tzinfo),
        **DEFAULTS,
    )


def policy_in_force(consortium_id: int, at: datetime | None = None) -> ConsortiumPolicy:
    moment = at or clock.now()
    query = (
        select(ConsortiumPolicy)
        .where(
            ConsortiumPolicy.consortium_id == consortium_id, ConsortiumPolicy.valid_from <= moment
        )
        .order_by(ConsortiumPolicy.valid_from.desc(), ConsortiumPolicy.id.desc())
        .limit(1)
    )
    return db.session.execute(query).scalar_one_or_none() or default_policy(consortium_id)


def reminder_leads(policy: ConsortiumPolicy) -> list[int]:
    """The reminder lead times in minutes, longest first, without the ones turned off."""
    leads = {policy.reminder_early_minutes, policy.reminder_late_minutes} - {0}
    return sorted(leads, reverse=True)


def change_policy(actor: Actor, *, reason: str | None, **settings: int) -> ConsortiumPolicy:
    """Append a new version of the caller's consortium policy, in force from now."""
    if not actor.is_admin:
        raise Forbidden(_l("only admins change the consortium policy"))
    current = policy_in_force(actor.consortium_id)
    new = ConsortiumPolicy(
        consortium_id=actor.consortium_id,
        valid_from=clock.now(),
        changed_by_id=actor.user_id,
        reason=(reason or "").strip()[:500] or None,
        **{name: getattr(current, name) for name in LIMITS},
    )
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
    if new.reminder_early_minutes and new.reminder_early_minutes <= new.reminder_late_minutes:
        raise InvalidInput(
            _l(
                "reminder_early_minutes must be longer than reminder_late_minutes "
                "(or 0 to turn the early reminder off)"
            ),
            field="reminder_early_minutes",
        )
    db.session.add(new)
    db.session.flush()
    audit.record(
        actor,
        "update",
        "consortium_policy",
        actor.consortium_id,
        detail={
            "old": {name: getattr(current, name) for name in LIMITS},
            "new": {name: getattr(new, name) for name in LIMITS},
            "reason": new.reason,
        },
    )
    return new
