"""The DICOM node against a real Orthanc standing in for a member institution's PACS:
Orthanc pushes a study into telemed (its REST ``/modalities/<telemed>/store``), and a
doctor finds a study on it (C-FIND) and pulls it into a case (C-MOVE), byte-identical."""

from __future__ import annotations

import pydicom
import pytest
from sqlalchemy import select

from telemed.domain.case_states import CaseKind
from telemed.extensions import db
from telemed.models.dicom_node import DicomPull, InboxInstance, PullStatus, Retrieve
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, dicom, dicom_inbox, dicom_nodes, pacs_pulls
from tests import dicom_files
from tests.dicomnode.support import (
    Orthanc,
    as_dcmtk_sends,
    data_set_bytes,
    free_port,
    listener,
    same_elements,
)

PACS_AE = "TS1_PACS"


@pytest.fixture
def scp(app):
    running = listener(app)
    yield running
    running.stop()


@pytest.fixture
def orthanc(tmp_path, scp):
    pacs = Orthanc(
        tmp_path / "orthanc",
        ae_title=PACS_AE,
        modalities={"telemed": [scp.ae_title, "127.0.0.1", scp.port]},
    )
    yield pacs
    pacs.stop()


@pytest.fixture
def member(app, world, orthanc):
    """Township One calls telemed as its PACS does, and its PACS is the Orthanc."""
    dicom_nodes.set_node(
        actor_of(world.user("admin")),
        world.members[0].id,
        ae_title=PACS_AE,
        pacs_host="127.0.0.1",
        pacs_port=orthanc.dicom_port,
        pacs_ae_title=PACS_AE,
    )
    db.session.commit()
    return world.members[0]


def sop_of(path) -> str:
    return pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID


def test_orthanc_pushes_a_study_into_the_inbox(orthanc, member, world, tmp_path):
    series = dicom_files.ct_series(tmp_path / "ct", 3, patient_id="PACS-0042")
    extra = [dicom_files.sample("MR2_J2KI.dcm")]  # JPEG 2000, sent as it is stored
    ids = [orthanc.upload(path) for path in [*series, *extra]]
    answer = orthanc.push("telemed", ids)
    assert answer.get("FailedInstancesCount", 0) == 0, answer
    db.session.commit()
    rows = {
        row.sop_instance_uid: row
        for row in db.session.execute(
            select(InboxInstance).where(InboxInstance.institution_id == member.id)
        ).scalars()
    }
    assert len(rows) == 4
    for path in [*series, *extra]:
        row = rows[sop_of(path)]
        assert row.calling_ae_title == PACS_AE and row.case_id is None
        stored = dicom.store().path_of(row.sha256)
        assert data_set_bytes(stored) == as_dcmtk_sends(path, tmp_path), path.name
        same_elements(stored, path)
    gp = actor_of(world.user("gp_ts1"))
    studies = {study.header_patient_id: study for study in dicom_inbox.waiting_studies(gp)}
    assert studies["PACS-0042"].instances == 3


def test_a_doctor_finds_a_study_on_the_pacs_and_pulls_it_into_a_case(
    orthanc, member, world, tmp_path
):
    wanted = dicom_files.ct_series(tmp_path / "wanted", 3, patient_id="PACS-0042")
    other = dicom_files.ct_series(tmp_path / "other", 2, patient_id="PACS-0099")
    for path in [*wanted, *other]:
        orthanc.upload(path)
    gp = actor_of(world.user("gp_ts1"))
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][1].id,  # Li Si: no ID the PACS knows
        kind=CaseKind.IMAGING_READ,
        question="Compare with last year's CT",
        target_department_id=world.departments["RAD"].id,
    )
    db.session.commit()

    [found] = pacs_pulls.find_studies(gp, case.id, patient_id="PACS-0042")
    assert found.study_uid == pydicom.dcmread(wanted[0]).StudyInstanceUID
    assert found.patient_id == "PACS-0042" and found.instances == 3

    pull = pacs_pulls.request_pull(gp, case.id, found.study_uid)
    pull_id = pull.id
    db.session.commit()  # the listener must see the pull
    pacs_pulls.retrieve(gp, pull.id)
    db.session.commit()

    done = db.session.get(DicomPull, pull_id)
    assert done.status is PullStatus.DONE and done.completed == 3 and done.failed == 0
    instances = dicom.instances_of(case.id)
    assert sorted(i.sop_instance_uid for i in instances) == sorted(sop_of(p) for p in wanted)
    by_sop = {i.sop_instance_uid: i for i in instances}
    for path in wanted:
        stored = dicom.store().path_of(by_sop[sop_of(path)].sha256)
        assert data_set_bytes(stored) == as_dcmtk_sends(path, tmp_path), path.name
        same_elements(stored, path)
    assert dicom_inbox.waiting_studies(gp) == []  # nothing of it waits in the inbox


# pynetdicom shuts down, but never closes, a socket whose connect was refused
# (transport.AssociationSocket.connect); the collector then warns about it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_pacs_that_does_not_answer_is_a_clear_refusal(app, world, scp, tmp_path):
    from telemed.errors import Conflict

    dicom_nodes.set_node(
        actor_of(world.user("admin")),
        world.members[0].id,
        ae_title=PACS_AE,
        pacs_host="127.0.0.1",
        pacs_port=free_port(),  # nothing listens there
        pacs_ae_title=PACS_AE,
    )
    gp = actor_of(world.user("gp_ts1"))
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][1].id,
        kind=CaseKind.IMAGING_READ,
        question="?",
        target_department_id=world.departments["RAD"].id,
    )
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        pacs_pulls.find_studies(gp, case.id, patient_id="X")
    assert refused.value.field == "pacs" and "did not answer" in refused.value.message


def test_a_pacs_set_to_c_get_sends_the_study_back_on_telemed_s_association(app, world, tmp_path):
    """No listener runs at all: the study comes back on the C-GET association."""
    pacs = Orthanc(
        tmp_path / "orthanc",
        ae_title=PACS_AE,
        # Orthanc must know telemed to answer it, not reach it: nothing listens there.
        modalities={"telemed": ["TELEMED", "127.0.0.1", free_port()]},
    )
    try:
        dicom_nodes.set_node(
            actor_of(world.user("admin")),
            world.members[0].id,
            ae_title=PACS_AE,
            pacs_host="127.0.0.1",
            pacs_port=pacs.dicom_port,
            pacs_ae_title=PACS_AE,
            pacs_retrieve=Retrieve.GET,
        )
        wanted = dicom_files.ct_series(tmp_path / "wanted", 2, patient_id="PACS-0042")
        wanted.append(dicom_files.sample("MR2_J2KI.dcm"))  # JPEG 2000, kept as it is
        for path in wanted:
            pacs.upload(path)
        gp = actor_of(world.user("gp_ts1"))
        case = cases.open_case(
            gp,
            patient_id=world.patients["TS1"][1].id,
            kind=CaseKind.IMAGING_READ,
            question="?",
            target_department_id=world.departments["RAD"].id,
        )
        db.session.commit()
        studies = {
            s.study_uid for s in pacs_pulls.find_studies(gp, case.id, study_date="2004-01-19")
        }
        assert pydicom.dcmread(wanted[0]).StudyInstanceUID in studies
        for study_uid in {pydicom.dcmread(p).StudyInstanceUID for p in wanted}:
            pull = pacs_pulls.request_pull(gp, case.id, study_uid)
            db.session.commit()
            done = pacs_pulls.retrieve(gp, pull.id)
            db.session.commit()
            assert done.status is PullStatus.DONE and done.failed == 0, done.problem
        by_sop = {i.sop_instance_uid: i for i in dicom.instances_of(case.id)}
        assert sorted(by_sop) == sorted(sop_of(p) for p in wanted)
        for path in wanted:
            stored = dicom.store().path_of(by_sop[sop_of(path)].sha256)
            assert data_set_bytes(stored) == as_dcmtk_sends(path, tmp_path), path.name
            same_elements(stored, path)
    finally:
        pacs.stop()
