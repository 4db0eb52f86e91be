"""A claimed read belongs to its claimant: a colleague cannot hand it back to take it
over; an admin may, with a reason, on the record; and a signature is always over text
its signer wrote or took over as theirs, the earlier author's draft kept as a version."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.models.cases import CaseTransition, Report
from telemed.models.consortium import Role
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, dicom
from tests import dicom_files, factories


@pytest.fixture
def read(world, tmp_path):
    """An imaging read claimed by rad1, with rad1's unfinished draft."""
    factories.add_user("rad2", Role.SPECIALIST, world.lead, world.departments["RAD"])
    gp = actor_of(world.user("gp_ts1"))
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][0].id,
        kind=CaseKind.IMAGING_READ,
        question="Fracture?",
        target_department_id=world.departments["RAD"].id,
    )
    dicom.attach_files(gp, case.id, [("ct.dcm", dicom_files.ct_series(tmp_path, 1)[0])])
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    db.session.commit()
    return case.id


@pytest.fixture
def api(client, world, read):
    tokens = {
        name: factories.bearer(factories.token_for(factories_user(world, name)))
        for name in ("rad1", "rad2", "admin")
    }

    def call(method: str, who: str, path: str, **kwargs):
        return client.open(f"/api/cases/{read}{path}", method=method, headers=tokens[who], **kwargs)

    assert call("POST", "rad1", "/claim").status_code == 200
    draft = {"findings": "Half-read: possible cortical", "impression": "Unfinished"}
    assert call("PUT", "rad1", "/report", json=draft).status_code == 200
    return call


def factories_user(world, name):
    from telemed.models.consortium import User

    return db.session.execute(select(User).where(User.username == name)).scalar_one()


def test_a_colleague_cannot_hand_back_anothers_claim(api, read):
    refused = api("POST", "rad2", "/transitions", json={"to": "submitted"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["field"] == "status"
    assert "claimed" in refused.get_json()["error"]["message"]
    assert api("POST", "rad2", "/claim").status_code == 409
    assert api("POST", "rad2", "/report/sign").status_code in (403, 409)
    db.session.rollback()
    report = db.session.execute(select(Report).where(Report.case_id == read)).scalar_one()
    assert report.signed_at is None


def test_the_claimant_hands_back_and_the_next_reader_signs_only_their_own_text(api, read):
    assert api("POST", "rad1", "/transitions", json={"to": "submitted"}).status_code == 200
    assert api("POST", "rad2", "/claim").status_code == 200
    unsaved = api("POST", "rad2", "/report/sign")
    assert unsaved.status_code == 409
    assert "another reader" in unsaved.get_json()["error"]["message"]
    taken = api("PUT", "rad2", "/report", json={"impression": "Fracture of the radius"})
    assert taken.status_code == 200
    assert api("POST", "rad2", "/report/sign").status_code == 200
    db.session.rollback()
    versions = db.session.execute(
        select(Report).where(Report.case_id == read).order_by(Report.version)
    ).scalars()
    kept = [
        (r.version, r.author.username, r.impression, r.signed_by_id is not None) for r in versions
    ]
    assert kept == [
        (1, "rad1", "Unfinished", False),
        (2, "rad2", "Fracture of the radius", True),
    ]


def test_an_admin_hands_back_a_claim_with_a_reason_on_the_record(api, read):
    without = api("POST", "admin", "/transitions", json={"to": "submitted"})
    assert without.status_code == 403 and without.get_json()["error"]["field"] == "reason"
    handed = api(
        "POST", "admin", "/transitions", json={"to": "submitted", "reason": "rad1 is off sick"}
    )
    assert handed.status_code == 200, handed.get_json()
    db.session.rollback()
    last = (
        db.session.execute(
            select(CaseTransition)
            .where(CaseTransition.case_id == read)
            .order_by(CaseTransition.id.desc())
        )
        .scalars()
        .first()
    )
    assert (last.from_status, last.to_status, last.reason) == (
        CaseStatus.CLAIMED,
        CaseStatus.SUBMITTED,
        "rad1 is off sick",
    )
    assert last.actor_id == factories_user(None, "admin").id


def test_a_claim_is_handed_to_a_named_reader_only_by_its_claimant(api, read, world):
    rad2 = factories_user(world, "rad2").id
    seized = api("POST", "rad2", "/hand-over", json={"to_user_id": rad2})
    assert seized.status_code == 403 and seized.get_json()["error"]["field"] == "to_user_id"
    not_a_reader = api(
        "POST", "rad1", "/hand-over", json={"to_user_id": factories_user(world, "gp_ts1").id}
    )
    assert not_a_reader.status_code == 422
    assert not_a_reader.get_json()["error"]["field"] == "to_user_id"
    handed = api("POST", "rad1", "/hand-over", json={"to_user_id": rad2, "reason": "leaving"})
    assert handed.status_code == 200, handed.get_json()
    assert api("POST", "rad2", "/report/sign").status_code == 409  # rad1's text, not yet rad2's
    assert api("PUT", "rad2", "/report", json={"impression": "Fracture"}).status_code == 200
    assert api("POST", "rad2", "/report/sign").status_code == 200
    db.session.rollback()
    last_move = (
        db.session.execute(
            select(CaseTransition)
            .where(CaseTransition.case_id == read, CaseTransition.from_status == CaseStatus.CLAIMED)
            .order_by(CaseTransition.id)
        )
        .scalars()
        .first()
    )
    assert (last_move.to_status, last_move.reason) == (CaseStatus.CLAIMED, "leaving")
    assert last_move.actor_id == factories_user(world, "rad1").id
