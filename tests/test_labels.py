"""The label registry words every value of every enum a person may meet, in both
languages; the few enums no page shows are named here with the reason."""

from __future__ import annotations

import enum
import importlib
import pkgutil

import pytest
from flask_babel import force_locale

import telemed
from telemed.labels import LABELS, label
from telemed.models.consortium import ClinicalTitle

# Enums that never reach a reader: each says why.
NEVER_SHOWN = {
    "Granularity",  # how the dashboard's trend buckets its rows; the bucket shows dates
    "Availability",  # a slot search's filter; pages show seats left instead
    "ReferralSide",  # who may act on a referral; pages show the actions, not the side
    "Side",  # the same for cases
    "AuditOutcome",  # the audit trail is read through the database and exports, not pages
    "JoinState",  # the consult link has its own sentence for each state (_consult_link.html)
}


def telemed_enums() -> list[type[enum.Enum]]:
    for module in pkgutil.walk_packages(telemed.__path__, "telemed."):
        if module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    found, pending = [], list(enum.Enum.__subclasses__())
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if kind.__module__.startswith("telemed."):
            found.append(kind)
    return sorted(found, key=lambda kind: kind.__name__)


@pytest.mark.parametrize("kind", telemed_enums(), ids=lambda kind: kind.__name__)
def test_every_shown_enum_has_a_word_for_each_value(app, kind):
    if kind.__name__ in NEVER_SHOWN:
        assert kind not in LABELS  # once a page shows it, take it off the list
        return
    assert kind in LABELS, f"{kind.__name__} has no labels"
    assert set(LABELS[kind]) == set(kind), f"{kind.__name__}: not every value is worded"
    for member in kind:
        with force_locale("zh_Hans"):
            chinese = label(member)
        with force_locale("en"):
            english = label(member)
        assert chinese != member.value, f"{kind.__name__}.{member.name} shows its code"
        # An acronym (ECG) is the same in both languages; any other word is not.
        assert chinese != english or english.isupper(), f"{member!r} has no Chinese"


def test_a_title_is_worded_in_the_readers_language(app):
    with force_locale("zh_Hans"):
        assert label(ClinicalTitle.CHIEF_PHYSICIAN) == "主任医师"
    with force_locale("en"):
        assert label(ClinicalTitle.CHIEF_PHYSICIAN) == "Chief physician"
