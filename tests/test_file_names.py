"""File names are cleaned on the way in: control characters (CR/LF would split the
download's header), bidirectional overrides and folders are removed, so a recording sent
as "ecg\\r\\nSet-Cookie: x.dcm" is stored and downloaded as a plain name."""

from __future__ import annotations

import base64

from telemed.domain.file_names import clean_file_name
from telemed.extensions import db
from telemed.services.accounts.context import actor_of
from telemed.services.cases import ecg_files
from tests import factories
from tests.ecg import samples
from tests.test_ecg_attach import open_ecg_case

TUS = {"Tus-Resumable": "1.0.0"}
EVIL = "ecg\r\nSet-Cookie: x=1\r\n.dcm"


def test_clean_file_name():
    assert clean_file_name(EVIL) == "ecgSet-Cookie: x=1.dcm"
    assert clean_file_name("C:\\scans\\..\\ct.dcm") == "ct.dcm"
    assert clean_file_name("../../etc/passwd") == "passwd"
    assert clean_file_name("invoice\u202egpj.exe") == "invoicegpj.exe"
    assert clean_file_name("心电图 1.xml") == "心电图 1.xml"
    assert clean_file_name("\x00\x1f\r\n") == ""
    assert len(clean_file_name("a" * 1000)) == 300


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def test_a_name_with_cr_lf_sent_by_tus_is_stored_clean_and_downloads(world, client):
    case_id = open_ecg_case(world).id
    db.session.commit()
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))
    data = samples.DICOM_WAVEFORM.read_bytes()
    created = client.post(
        "/uploads",
        headers={
            **TUS,
            **headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename=EVIL, case_id=str(case_id), purpose="ecg"),
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    sent = client.patch(
        created.headers["Location"],
        data=data,
        headers={
            **TUS,
            **headers,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert sent.status_code == 204, sent.get_data(as_text=True)
    db.session.rollback()
    recording = ecg_files.recordings_of(case_id)[0]
    assert recording.originals[0]["filename"] == "ecgSet-Cookie: x=1.dcm"
    with client.get(f"/cases/{case_id}/files/ecg/{recording.id}", headers=headers) as download:
        assert download.status_code == 200
        assert "\r" not in download.headers["Content-Disposition"]
        assert "Set-Cookie" not in download.headers


def test_a_service_caller_cannot_store_control_characters_either(world, client):
    case = open_ecg_case(world)
    ecg_files.attach_files(
        actor_of(world.user("gp_ts1")), case.id, [(EVIL, samples.DICOM_WAVEFORM)]
    )
    db.session.commit()
    recording = ecg_files.recordings_of(case.id)[0]
    assert recording.originals[0]["filename"] == "ecgSet-Cookie: x=1.dcm"
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))
    with client.get(f"/cases/{case.id}/files/ecg/{recording.id}", headers=headers) as download:
        assert download.status_code == 200
