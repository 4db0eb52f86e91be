"""A consult whose signed report says "refer up" offers the upward referral on its report
page; the consulting specialist opens it with the green channel on the member side's
behalf, and the page then links to it."""

from __future__ import annotations

from sqlalchemy import select

from telemed.extensions import db
from telemed.models.referrals import Referral
from tests.pages.conftest import text_of
from tests.test_referrals import consult_with_signed_report


def test_specialist_refers_up_from_the_consult_report(world, signed_in, frozen_clock):
    case, _report = consult_with_signed_report(world)
    card1 = signed_in("card1")
    page = text_of(card1.get(f"/consults/{case.id}/report"))
    assert "Open the upward referral" in page
    made = card1.post(f"/referrals/from-case/{case.id}", {"green_channel": "on", "reason": "PCI"})
    assert made.status_code == 303
    referral = db.session.execute(select(Referral)).scalar_one()
    assert referral.case_id == case.id and referral.green_channel
    assert referral.member_doctor_id == world.user("gp_ts1").id
    assert referral.requested_by_id == world.user("card1").id
    page = text_of(card1.get(f"/consults/{case.id}/report"))
    assert f"#{referral.id}" in page and "Open the upward referral" not in page
    # Someone not party to the case gets 404.
    assert signed_in("im1").post(f"/referrals/from-case/{case.id}", {}).status_code == 404
