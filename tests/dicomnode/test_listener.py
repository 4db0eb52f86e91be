"""The DICOM node's listener against dcmtk's storescu and echoscu: known AE titles are
served, unknown ones refused, instances land in the inbox (or their case) with the data
set byte-identical, and a file the upload checks refuse is not kept at all."""

from __future__ import annotations

import socket
import subprocess
import time

import pydicom
import pytest
from sqlalchemy import func, select

from telemed.domain.case_states import CaseKind
from telemed.extensions import db
from telemed.models.case_files import DicomInstance
from telemed.models.dicom_node import InboxInstance
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, dicom, dicom_inbox, dicom_nodes
from tests import dicom_files
from tests.dicomnode.support import (
    as_dcmtk_sends,
    data_set_bytes,
    dcmtk,
    listener,
    same_elements,
    sent_data_set,
)

MEMBER_AE = "TS1_PACS"


@pytest.fixture
def node(app, world):
    dicom_nodes.set_node(actor_of(world.user("admin")), world.members[0].id, ae_title=MEMBER_AE)
    db.session.commit()
    return world.members[0]


@pytest.fixture
def scp(app, node):
    running = listener(app)
    yield running
    running.stop()


# storescu's option that proposes a compressed transfer syntax (with the uncompressed
# ones); an uncompressed file is sent as it is under the default proposal.
PROPOSE = {
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.1.99": "-xd",
}


def storescu(scp, *paths, calling=MEMBER_AE):
    """Send files as they are (no transcoding on the way): one storescu run per transfer
    syntax, each proposing only what its files need (-R)."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        groups.setdefault(PROPOSE.get(syntax, "-x="), []).append(str(path))
    address = ["-aet", calling, "-aec", scp.ae_title, "127.0.0.1", str(scp.port)]
    runs = [dcmtk("storescu", "-R", option, *address, *files) for option, files in groups.items()]
    return subprocess.CompletedProcess(
        "storescu",
        max(run.returncode for run in runs),
        "".join(run.stdout for run in runs),
        "".join(run.stderr for run in runs),
    )


def inbox_rows(institution_id):
    return list(
        db.session.execute(
            select(InboxInstance)
            .where(InboxInstance.institution_id == institution_id)
            .order_by(InboxInstance.id)
        ).scalars()
    )


def test_a_known_ae_is_echoed_and_an_unknown_one_refused(scp):
    assert (
        dcmtk(
            "echoscu", "-aet", MEMBER_AE, "-aec", "TELEMED", "127.0.0.1", str(scp.port)
        ).returncode
        == 0
    )
    refused = dcmtk("echoscu", "-aet", "STRANGER", "-aec", "TELEMED", "127.0.0.1", str(scp.port))
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr


def test_an_unknown_ae_stores_nothing(scp, node):
    sent = storescu(scp, dicom_files.sample("CT_small.dcm"), calling="STRANGER")
    assert sent.returncode != 0
    assert inbox_rows(node.id) == []


def test_the_listener_sockets_send_without_delay(scp):
    with socket.create_connection(("127.0.0.1", scp.port)) as client:
        accepted = []
        for _ in range(100):  # the server's side of this connection, once accepted
            accepted = [a.dul.socket.socket for a in scp.server.active_associations]
            if accepted:
                break
            time.sleep(0.05)
        mine = [s for s in accepted if s and s.getpeername() == client.getsockname()]
        assert mine, "the connection was not accepted"
        assert mine[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


# Distinct instances in six transfer syntaxes: explicit VR little endian (with trailing
# padding), JPEG 2000, RLE, JPEG lossless, and two more JPEG 2000 modalities.
SAMPLES = [
    "CT_small.dcm",
    "MR2_J2KI.dcm",
    "emri_small_RLE.dcm",
    "JPEG-LL.dcm",
    "RG3_J2KI.dcm",
    "US1_J2KI.dcm",
]


def test_storescu_lands_in_the_inbox_byte_identical(scp, node, tmp_path):
    # Not liver_deflate.dcm: its Deflated Image Frame Compression is a syntax dcmtk does
    # not know, so storescu cannot send it (it fails before any association is used).
    sources = [dicom_files.sample(name) for name in SAMPLES]
    sent = storescu(scp, *sources)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    rows = {row.sop_instance_uid: row for row in inbox_rows(node.id)}
    assert len(rows) == len(sources)
    content = dicom.store()
    for source in sources:
        header = pydicom.dcmread(source, stop_before_pixels=True)
        row = rows[header.SOPInstanceUID]
        assert row.case_id is None and row.calling_ae_title == MEMBER_AE
        stored = content.path_of(row.sha256)
        # The data set is kept as it came off the wire, byte for byte: dcmtk's encoding of
        # the file (explicit lengths), the same bytes as the file itself where the file
        # is already so encoded. The preamble is zeroed and the file meta is telemed's own,
        # naming the same transfer syntax and instance.
        assert data_set_bytes(stored) == as_dcmtk_sends(source, tmp_path), source.name
        same_elements(stored, source)
        assert stored.read_bytes()[:128] == bytes(128)
        meta = pydicom.dcmread(stored, stop_before_pixels=True).file_meta
        assert meta.TransferSyntaxUID == header.file_meta.TransferSyntaxUID
        assert meta.MediaStorageSOPInstanceUID == header.SOPInstanceUID
    for name in ("CT_small.dcm", "emri_small_RLE.dcm"):  # already in dcmtk's encoding
        source = dicom_files.sample(name)
        row = rows[pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID]
        assert data_set_bytes(content.path_of(row.sha256)) == sent_data_set(source)
    waiting = dicom_inbox.waiting_studies(actor_of(_gp(node)))
    assert sum(study.instances for study in waiting) == len(sources)


def _gp(node):
    from telemed.models.consortium import Role, User

    return (
        db.session.execute(
            select(User).where(User.institution_id == node.id, User.role == Role.GRASSROOTS)
        )
        .scalars()
        .first()
    )


def test_a_file_the_checks_refuse_is_not_kept(scp, node, tmp_path):
    bad = dicom_files.short_pixels(tmp_path / "short.dcm")
    sent = storescu(scp, bad)
    assert "0xc000" in (sent.stdout + sent.stderr).lower() or sent.returncode != 0
    assert inbox_rows(node.id) == []
    objects = dicom.store().root / "objects"
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))
    tmp = dicom.store().root / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


def test_a_study_of_an_open_case_s_patient_goes_to_that_case(scp, node, world, tmp_path):
    gp = actor_of(world.user("gp_ts1"))
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][0].id,  # Zhang San, whose national ID the files carry
        kind=CaseKind.IMAGING_READ,
        question="Nodule?",
        target_department_id=world.departments["RAD"].id,
    )
    db.session.commit()
    series = dicom_files.ct_series(tmp_path / "ct", 3)
    sent = storescu(scp, *series)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    instances = dicom.instances_of(case.id)
    assert len(instances) == 3 and all(i.uploaded_by_id is None for i in instances)
    assert all(row.case_id == case.id for row in inbox_rows(node.id))
    assert dicom_inbox.waiting_studies(gp) == []
    for path, instance in zip(series, instances, strict=True):
        stored = dicom.store().path_of(instance.sha256)
        assert data_set_bytes(stored) == sent_data_set(path)


def test_a_doctor_attaches_a_waiting_study_in_one_step(scp, node, world, tmp_path):
    gp = actor_of(world.user("gp_ts1"))
    series = dicom_files.ct_series(tmp_path / "ct", 2, patient_id="NOT-KNOWN")
    assert storescu(scp, *series).returncode == 0
    db.session.commit()  # end this test's read: the listener wrote meanwhile
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][1].id,
        kind=CaseKind.IMAGING_READ,
        question="Fracture?",
        target_department_id=world.departments["RAD"].id,
    )
    [study] = dicom_inbox.waiting_studies(gp)
    assert study.instances == 2 and study.header_patient_id == "NOT-KNOWN"
    outcomes = dicom_inbox.attach_study(gp, study.study_uid, case.id)
    db.session.commit()
    assert [o.status for o in outcomes] == ["stored", "stored"]
    assert dicom.count_instances(case.id) == 2
    assert dicom_inbox.waiting_studies(gp) == []
    # Another institution's doctor sees none of it.
    other = actor_of(world.user("gp_cm1"))
    assert dicom_inbox.waiting_studies(other) == []
    count = db.session.execute(select(func.count()).select_from(DicomInstance)).scalar_one()
    assert count == 2


@pytest.mark.parametrize("cut_off", [True, False])
def test_an_association_cut_off_mid_instance_keeps_nothing(scp, node, cut_off):
    """The sender goes away after the command and part of the data set: no inbox row, no
    stored object, and the listener goes on serving. (Sent whole, the same bytes land.)"""
    from io import BytesIO

    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.pdu import P_DATA_TF
    from pynetdicom.sop_class import CTImageStorage

    source = dicom_files.sample("CT_small.dcm")
    header = pydicom.dcmread(source, stop_before_pixels=True)
    ae = AE(ae_title=MEMBER_AE)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=scp.ae_title)
    assert assoc.is_established
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = CTImageStorage
    request.AffectedSOPInstanceUID = header.SOPInstanceUID
    request.Priority = 0
    request.DataSet = BytesIO(data_set_bytes(source))
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    context_id = assoc.accepted_contexts[0].context_id
    fragments = list(message.encode_msg(context_id, 4096))
    assert len(fragments) > 4
    raw = assoc.dul.socket.socket
    sent = fragments[:3] if cut_off else fragments  # the command, then (part of) the data set
    for fragment in sent:
        pdu = P_DATA_TF()
        pdu.from_primitive(fragment)
        raw.sendall(pdu.encode())
    time.sleep(1.0)
    assoc.abort()
    raw.close()  # pynetdicom's abort shuts the socket down but leaves it open
    time.sleep(0.5)
    if not cut_off:
        for _ in range(100):  # the success status leaves after the commit
            if inbox_rows(node.id):
                break
            db.session.commit()
            time.sleep(0.1)
        [row] = inbox_rows(node.id)
        assert data_set_bytes(dicom.store().path_of(row.sha256)) == data_set_bytes(source)
        return
    assert inbox_rows(node.id) == []
    objects = dicom.store().root / "objects"
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))
    address = ["-aec", "TELEMED", "127.0.0.1", str(scp.port)]
    assert dcmtk("echoscu", "-aet", MEMBER_AE, *address).returncode == 0
