"""ServiceRequest search over the two-way referrals (category 3457005), beside the cases."""

from __future__ import annotations

from datetime import date, timedelta

from telemed.domain.case_states import CaseKind
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from telemed.services.consortium import referrals
from tests import factories
from tests.fhir_support import code_system, fhir_client, ids, outcome, slot_ids

REFERRAL = "http://snomed.info/sct|3457005"
DIRECTION = code_system("referral-direction")


def referral_world(world):
    gp_ts1, gp_cm1 = actor_of(world.user("gp_ts1")), actor_of(world.user("gp_cm1"))
    card1 = actor_of(world.user("card1"))
    patient = world.patients["TS1"][0]
    up = referrals.open_upward_referral(
        gp_ts1, patient_id=patient.id, reason="syncope", department_id=world.departments["CARD"].id
    )
    other = referrals.open_upward_referral(
        gp_cm1,
        patient_id=world.patients["CM1"][0].id,
        reason="palpitations",
        department_id=world.departments["CARD"].id,
    )
    referrals.accept_referral(card1, up.id)
    pub = factories.publish(world.user("card1"), days_ahead=2, seats=3, down_shared=1)
    first_slot = slot_ids(pub.schedule.id)[0]
    referrals.book_referral_seat(gp_ts1, up.id, first_slot)
    referrals.complete_referral(card1, up.id, note="seen")
    down = referrals.open_downward_referral(
        card1,
        patient_id=patient.id,
        member_institution_id=world.members[0].id,
        member_doctor_id=world.user("gp_ts2").id,
        follow_up_plan="BP monthly",
        next_visit_date=date(2026, 11, 23) + timedelta(days=14),
        reason="stable",
        parent_id=up.id,
    )
    consult = cases.open_case(
        gp_ts1,
        patient_id=patient.id,
        kind=CaseKind.CONSULT,
        question="Which beta blocker?",
        target_specialist_id=world.user("card1").id,
    )
    return up, other, down, consult


def test_referrals_are_searched_by_category_direction_status_and_patient(
    world, client, frozen_clock
):
    up, other, down, consult = referral_world(world)
    gp = fhir_client(client, world.user("gp_ts1"))
    card = fhir_client(client, world.user("card1"))

    # The member side sees its own referrals only, newest first; the lead side all of its own.
    assert ids(gp.search("ServiceRequest", {"category": REFERRAL})) == [
        f"referral-{down.id}",
        f"referral-{up.id}",
    ]
    assert set(ids(card.search("ServiceRequest", {"category": "3457005"}))) == {
        f"referral-{r.id}" for r in (up, other, down)
    }
    down_only = {"category": REFERRAL, "_tag": f"{DIRECTION}|down"}
    assert ids(card.search("ServiceRequest", down_only)) == [f"referral-{down.id}"]
    up_only = {"_tag": f"{DIRECTION}|up"}  # the direction alone means referrals too
    assert set(ids(card.search("ServiceRequest", up_only))) == {
        f"referral-{up.id}",
        f"referral-{other.id}",
    }
    assert ids(
        card.search(
            "ServiceRequest",
            {"category": REFERRAL, "patient": f"Patient/{world.patients['CM1'][0].id}"},
        )
    ) == [f"referral-{other.id}"]
    assert ids(card.search("ServiceRequest", {"category": REFERRAL, "status": "completed"})) == [
        f"referral-{up.id}"
    ]
    paged = card.search("ServiceRequest", {"category": REFERRAL, "_count": "2"})
    assert paged["total"] == 3 and len(ids(paged)) == 2

    # Without the category the same search answers with cases, which a category narrows.
    assert ids(gp.search("ServiceRequest")) == [str(consult.id)]
    assert ids(gp.search("ServiceRequest", {"category": "29303009"})) == []
    assert ids(gp.search("ServiceRequest", {"category": "11429006"})) == [str(consult.id)]


def test_referral_search_refusals_name_the_parameter(world, client, frozen_clock):
    referral_world(world)
    card = fhir_client(client, world.user("card1"))
    cases_of = {"category": "11429006", "_tag": f"{DIRECTION}|up"}
    assert outcome(card.get("ServiceRequest", query=cases_of), 400)["expression"] == ["_tag"]
    mixed = {"category": "3457005,11429006"}
    assert outcome(card.get("ServiceRequest", query=mixed), 400)["expression"] == ["category"]
    sideways = {"category": REFERRAL, "_tag": f"{DIRECTION}|sideways"}
    assert "sideways" in outcome(card.get("ServiceRequest", query=sideways), 400)["diagnostics"]
    kind = {"category": REFERRAL, "code": "consult"}
    assert outcome(card.get("ServiceRequest", query=kind), 400)["expression"] == ["code"]
