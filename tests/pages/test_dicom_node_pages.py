"""The DICOM node's pages: the admin sets AE titles and PACS (bad input re-renders with
the field named, in the reader's language), doctors attach inbox studies in one click and
pull a study from their PACS (a real Orthanc) into a case."""

from __future__ import annotations

import pydicom
import pytest

from telemed.domain.case_states import CaseKind
from telemed.extensions import db
from telemed.models.consortium import User
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, dicom, dicom_inbox, dicom_nodes
from tests import dicom_files
from tests.dicomnode.support import Orthanc, as_dcmtk_sends, data_set_bytes, listener
from tests.pages.conftest import text_of


def node_path(world, index=0):
    return f"/admin/dicom-nodes/{world.members[index].id}"


def test_the_admin_sets_an_ae_title_and_a_pacs(signed_in, world):
    admin = signed_in("admin")
    listing = admin.get("/admin/dicom-nodes")
    assert listing.status_code == 200 and "Township One" in text_of(listing)
    saved = admin.post(
        node_path(world),
        {
            "ae_title": " TS1_PACS ",
            "pacs_host": "127.0.0.1",
            "pacs_port": "4242",
            "pacs_ae_title": "TS1_PACS",
            "pacs_retrieve": "get",
        },
    )
    assert saved.status_code == 303
    node = dicom_nodes.node_of(world.members[0].id)
    assert (node.ae_title, node.pacs_host, node.pacs_port) == ("TS1_PACS", "127.0.0.1", 4242)
    assert node.pacs_retrieve.value == "get"
    assert "TS1_PACS@127.0.0.1:4242" in text_of(admin.get("/admin/dicom-nodes"))


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"ae_title": ""}, "ae_title", "Enter an AE title."),
        ({"ae_title": "A" * 17}, "ae_title", "at most 16 characters"),
        ({"ae_title": "BAD\\AE"}, "ae_title", "no backslash"),
        ({"ae_title": "TAB\tAE"}, "ae_title", "no backslash or control characters"),
        ({"ae_title": "OK", "pacs_host": "pacs.local"}, "pacs_port", "together"),
        (
            {"ae_title": "OK", "pacs_host": "bad host", "pacs_port": "1", "pacs_ae_title": "P"},
            "pacs_host",
            "host name or an IP address",
        ),
        (
            {"ae_title": "OK", "pacs_host": "h", "pacs_port": "70000", "pacs_ae_title": "P"},
            "pacs_port",
            "from 1 to 65535",
        ),
        ({"ae_title": "OK", "pacs_port": "x"}, "pacs_port", "whole number"),
        ({"ae_title": "OK", "pacs_retrieve": "ftp"}, "pacs_retrieve", "Choose from the list."),
    ],
)
def test_bad_settings_are_refused_naming_the_field(signed_in, world, form, field, message):
    answer = signed_in("admin").post(node_path(world), form)
    assert answer.status_code == 422
    page = text_of(answer)
    assert f'id="{field}-error"' in page and message in page
    assert dicom_nodes.node_of(world.members[0].id) is None


def test_an_ae_title_is_one_institution_s_and_the_refusal_speaks_chinese(signed_in, world):
    admin = signed_in("admin")
    assert admin.post(node_path(world, 0), {"ae_title": "SHARED"}).status_code == 303
    user = db.session.get(User, world.user("admin").id)
    user.locale = "zh_Hans"
    db.session.commit()
    taken = admin.post(node_path(world, 1), {"ae_title": "SHARED"})
    assert taken.status_code == 422
    assert "另一家机构已使用此 AE 名称。" in text_of(taken)
    assert dicom_nodes.node_of(world.members[1].id) is None


def test_only_admins_set_nodes_and_only_of_member_institutions(signed_in, world):
    assert signed_in("gp_ts1").get("/admin/dicom-nodes").status_code == 403
    admin = signed_in("admin")
    assert admin.get(f"/admin/dicom-nodes/{world.lead.id}").status_code == 404
    assert admin.get("/admin/dicom-nodes/999999").status_code == 404


def imaging_case(world, patient=1, doctor="gp_ts1"):
    case = cases.open_case(
        actor_of(world.user(doctor)),
        patient_id=world.patients["TS1"][patient].id,
        kind=CaseKind.IMAGING_READ,
        question="Fracture?",
        target_department_id=world.departments["RAD"].id,
    )
    db.session.commit()
    return case


@pytest.fixture
def scp(app, world):
    dicom_nodes.set_node(actor_of(world.user("admin")), world.members[0].id, ae_title="TS1_PACS")
    db.session.commit()
    running = listener(app)
    yield running
    running.stop()


def send(scp, *paths):
    from tests.dicomnode.support import dcmtk

    address = ["-aet", "TS1_PACS", "-aec", scp.ae_title, "127.0.0.1", str(scp.port)]
    sent = dcmtk("storescu", *address, *[str(p) for p in paths])
    assert sent.returncode == 0, sent.stderr


def test_a_doctor_attaches_an_inbox_study_in_one_click(signed_in, world, scp, tmp_path):
    series = dicom_files.ct_series(tmp_path / "ct", 2, patient_id="UNKNOWN-7")
    send(scp, *series)
    case = imaging_case(world)
    doctor = signed_in("gp_ts1")
    inbox = text_of(doctor.get("/imaging/inbox"))
    study_uid = pydicom.dcmread(series[0]).StudyInstanceUID
    assert f'data-study="{study_uid}"' in inbox and "UNKNOWN-7" in inbox
    attached = doctor.post("/imaging/inbox/attach", {"study_uid": study_uid, "case_id": case.id})
    assert attached.status_code == 303 and attached.headers["Location"].endswith(
        f"/cases/{case.id}"
    )
    assert dicom.count_instances(case.id) == 2
    assert "UNKNOWN-7" not in text_of(doctor.get("/imaging/inbox"))
    # Another institution's doctor neither sees nor takes it.
    assert f'data-study="{study_uid}"' not in text_of(signed_in("gp_cm1").get("/imaging/inbox"))


def test_attaching_to_a_case_not_taking_files_is_refused_on_the_page(
    signed_in, world, scp, tmp_path
):
    series = dicom_files.ct_series(tmp_path / "ct", 1, patient_id="UNKNOWN-8")
    send(scp, *series)
    study_uid = pydicom.dcmread(series[0]).StudyInstanceUID
    other = cases.open_case(
        actor_of(world.user("gp_cm1")),
        patient_id=world.patients["CM1"][0].id,
        kind=CaseKind.IMAGING_READ,
        question="?",
        target_department_id=world.departments["RAD"].id,
    )
    db.session.commit()
    doctor = signed_in("gp_ts1")
    for form, message in (
        ({"study_uid": study_uid, "case_id": other.id}, "Choose the case"),
        ({"study_uid": study_uid, "case_id": "x"}, "Choose the case"),
        ({"study_uid": study_uid, "case_id": "99999999999999999999"}, "Choose the case"),
        ({"study_uid": "1.2.3", "case_id": imaging_case(world).id}, "no longer in the inbox"),
    ):
        answer = doctor.post("/imaging/inbox/attach", form)
        assert answer.status_code == 422 and message in text_of(answer), form
    assert len(dicom_inbox.waiting_studies(actor_of(world.user("gp_ts1")))) == 1


def test_a_doctor_pulls_a_study_from_the_pacs_on_the_case_page(app, signed_in, world, tmp_path):
    scp_listener = listener(app)
    pacs = Orthanc(
        tmp_path / "orthanc",
        ae_title="TS1_PACS",
        modalities={"telemed": [scp_listener.ae_title, "127.0.0.1", scp_listener.port]},
    )
    try:
        dicom_nodes.set_node(
            actor_of(world.user("admin")),
            world.members[0].id,
            ae_title="TS1_PACS",
            pacs_host="127.0.0.1",
            pacs_port=pacs.dicom_port,
            pacs_ae_title="TS1_PACS",
        )
        db.session.commit()
        series = dicom_files.ct_series(tmp_path / "ct", 2, patient_id="PACS-1234")
        for path in series:
            pacs.upload(path)
        case = imaging_case(world)
        doctor = signed_in("gp_ts1")
        assert "/pacs" in text_of(doctor.get(f"/cases/{case.id}"))
        found = doctor.get(f"/cases/{case.id}/pacs?patient_id=PACS-1234")
        study_uid = pydicom.dcmread(series[0]).StudyInstanceUID
        assert found.status_code == 200 and f'data-study="{study_uid}"' in text_of(found)
        bad = doctor.get(f"/cases/{case.id}/pacs?patient_id=A*")
        assert bad.status_code == 422 and 'id="patient_id-error"' in text_of(bad)
        bad = doctor.get(f"/cases/{case.id}/pacs?study_date=2026-13-45")
        assert bad.status_code == 422 and 'id="study_date-error"' in text_of(bad)
        bad = doctor.post(f"/cases/{case.id}/pacs/pull", {"study_uid": "1.2.3'; --"})
        assert bad.status_code == 303
        assert "That is not a study of the PACS." in text_of(doctor.get(bad.headers["Location"]))
        pulled = doctor.post(f"/cases/{case.id}/pacs/pull", {"study_uid": study_uid})
        assert pulled.status_code == 303
        page = text_of(doctor.get(f"/cases/{case.id}"))
        assert "The PACS sent 2 images into this case." in page
        instances = dicom.instances_of(case.id)
        assert len(instances) == 2
        by_sop = {i.sop_instance_uid: i for i in instances}
        for path in series:
            stored = dicom.store().path_of(by_sop[pydicom.dcmread(path).SOPInstanceUID].sha256)
            assert data_set_bytes(stored) == as_dcmtk_sends(path, tmp_path)
    finally:
        pacs.stop()
        scp_listener.stop()


def test_without_a_pacs_the_page_says_so(signed_in, world):
    case = imaging_case(world)
    page = signed_in("gp_ts1").get(f"/cases/{case.id}/pacs?patient_id=X")
    assert "No PACS is set for your institution" in text_of(page)
