"""A STOW-RS of one part writes the file while its header is checked: a refused file
leaves nothing in the store, neither an object nor a temporary copy; an accepted one is
in the store under its address when the answer comes; sent again, it is a duplicate that
leaves nothing behind either."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from telemed.domain.case_states import CaseStatus
from telemed.errors import Conflict
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom
from telemed.services.cases.cases import get_case
from tests import dicom_files, factories
from tests.test_dicom_service import open_imaging_case

BOUNDARY = "onepart"


def stow(client, case_id: int, token: str, data: bytes):
    body = (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    return client.post(
        f"/cases/{case_id}/dicomweb/studies",
        data=body,
        headers={
            **factories.bearer(token),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        },
    )


def store_files(area: str) -> list:
    return [path for path in dicom.store().area(area).rglob("*") if path.is_file()]


@pytest.fixture
def setting(app, world):
    case_id = open_imaging_case(world).id
    db.session.commit()
    return case_id, factories.token_for(world.user("gp_ts1"))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (dicom_files.executable_preamble, "polyglot"),
        (dicom_files.short_pixels, "pixel data is shorter than declared"),
        (dicom_files.huge_header, "refused before decoding"),
    ],
)
def test_a_refused_file_leaves_nothing_in_the_store(client, setting, tmp_path, make, reason):
    case_id, token = setting
    answer = stow(client, case_id, token, make(tmp_path / "bad.dcm").read_bytes())
    assert answer.status_code == 409 and reason in answer.headers["Warning"]
    assert store_files("objects") == [] and store_files("tmp") == []
    assert dicom.count_instances(case_id) == 0


def test_an_accepted_file_is_stored_once_and_a_resend_leaves_nothing(client, setting, tmp_path):
    case_id, token = setting
    source = dicom_files.ct_series(tmp_path, 1)[0].read_bytes()
    assert stow(client, case_id, token, source).status_code == 200
    [instance] = dicom.instances_of(case_id)
    stored = dicom.store().path_of(instance.sha256)
    assert stored.read_bytes()[128:] == source[128:] and stored.read_bytes()[:128] == bytes(128)
    assert store_files("tmp") == []

    again = stow(client, case_id, token, source)
    assert again.status_code in (200, 202)
    assert store_files("objects") == [stored] and store_files("tmp") == []
    assert dicom.count_instances(case_id) == 1


def test_a_case_submitted_while_its_files_are_checked_takes_none(app, world):
    """The second check of an attach reads the case's status again: a case submitted
    between the two is refused, though the request still holds the case as first read."""
    gp = actor_of(world.user("gp_ts1"))
    case = open_imaging_case(world)
    db.session.commit()
    first = get_case(gp, case.id)
    dicom.check_may_attach(gp, first)
    db.session.expunge(first)
    db.session.commit()
    db.session.execute(update(Case).where(Case.id == case.id).values(status=CaseStatus.SUBMITTED))
    with pytest.raises(Conflict):
        dicom.check_still_attachable(gp, first)
    db.session.rollback()
    dicom.check_still_attachable(gp, first)  # a draft again: taken
