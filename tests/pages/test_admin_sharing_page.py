"""The department page sets the green-channel reserve and the default allotments per
member institution; both are versioned like every other setting."""

from __future__ import annotations

from telemed.services.scheduling import policies
from tests.pages.conftest import text_of
from tests.pages.test_admin_pages import SETTINGS


def test_green_channel_and_allotments_are_set_and_versioned(world, signed_in, frozen_clock):
    cardiology = world.departments["CARD"]
    township, village = world.members[0], world.members[2]
    admin = signed_in("admin")
    url = f"/admin/departments/{cardiology.id}"
    form = text_of(admin.get(url))
    assert f'name="allot_{township.id}"' in form and "Green-channel reserve" in form
    saved = admin.post(
        url,
        {
            **SETTINGS,
            "green_channel_seats_per_slot": "1",
            f"allot_{township.id}": "1",
            f"allot_{village.id}": "2",
            "reason": "reserve and allotments",
        },
    )
    assert saved.status_code == 303
    policy = policies.policy_in_force(cardiology.id)
    assert policy.green_channel_seats_per_slot == 1
    assert policies.allotments_of(policy) == {township.id: 1, village.id: 2}
    # Blank keeps the reserve; a cleared allotment is removed.
    again = admin.post(
        url, {**SETTINGS, f"allot_{township.id}": "1", "reason": "village no longer"}
    )
    assert again.status_code == 303
    policy = policies.policy_in_force(cardiology.id)
    assert policy.green_channel_seats_per_slot == 1
    assert policies.allotments_of(policy) == {township.id: 1}
    history = text_of(admin.get(url))
    assert "Default allotments" in history and "Village One: 2" in history
    refused = admin.post(url, {**SETTINGS, f"allot_{township.id}": "x", "reason": "bad"})
    assert refused.status_code == 422
    assert "whole numbers" in text_of(refused)
