"""DICOMweb per case over real HTTP, driven by the stock dicomweb-client package."""

from __future__ import annotations

import io

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from sqlalchemy import select

from telemed.extensions import db
from telemed.models.audit import AuditEvent
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom
from tests import dicom_files, factories
from tests.test_dicom_service import open_imaging_case

USERS = ("gp_cm1", "ecg1", "card1", "rad1", "admin")


def client_for(server, case_id: int, token: str) -> DICOMwebClient:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return DICOMwebClient(url=f"{server.url}/cases/{case_id}/dicomweb", session=session)


@pytest.fixture
def imaging_case(world):
    """The id of a draft imaging read. Only the id: touching an expired ORM object here
    would open a transaction (and on SQLite hold the write lock) while the server works."""
    case_id = open_imaging_case(world).id
    db.session.commit()
    return case_id


def test_store_search_retrieve_metadata_and_render_round_trip(
    app, world, imaging_case, live_http, tmp_path
):
    token = factories.token_for(world.user("gp_ts1"))
    web = client_for(live_http, imaging_case, token)
    series = [pydicom.dcmread(p) for p in dicom_files.ct_series(tmp_path / "ct", 3)]
    series.append(pydicom.dcmread(dicom_files.sample("emri_small_jpeg_2k_lossless.dcm")))
    answer = web.store_instances(series)
    assert len(answer.ReferencedSOPSequence) == 4
    assert "FailedSOPSequence" not in answer

    study_uid = series[0].StudyInstanceUID
    studies = web.search_for_studies(search_filters={"StudyInstanceUID": study_uid})
    assert len(studies) == 1
    found = pydicom.Dataset.from_json(studies[0])
    assert found.NumberOfStudyRelatedInstances == 3 and found.ModalitiesInStudy == "CT"
    assert len(web.search_for_studies()) == 2
    assert len(web.search_for_studies(search_filters={"Modality": "MR"})) == 1
    assert web.search_for_studies(search_filters={"StudyDate": "19000101-19000102"}) == []
    page = web.search_for_instances(study_uid, limit=2, offset=2)
    assert len(page) == 1
    with_field = web.search_for_series(study_uid, fields=["PatientName"])
    assert pydicom.Dataset.from_json(with_field[0]).PatientName == "Zhang^San"
    instances = web.search_for_instances(study_uid, series[0].SeriesInstanceUID)
    assert len(instances) == 3

    instance = web.retrieve_instance(
        study_uid, series[0].SeriesInstanceUID, series[0].SOPInstanceUID
    )
    assert instance.SOPInstanceUID == series[0].SOPInstanceUID
    assert instance.pixel_array.shape == (128, 128)
    # Stored as JPEG 2000: as stored with transfer-syntax=*, decoded when asked for
    # Explicit VR Little Endian.
    mr = series[3]
    uids = (mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID)
    assert web.retrieve_instance(*uids).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    plain = web.retrieve_instance(
        *uids, media_types=(("application/dicom", "1.2.840.10008.1.2.1"),)
    )
    assert plain.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert plain.pixel_array.shape == (10, 64, 64)

    metadata = web.retrieve_instance_metadata(
        study_uid, series[0].SeriesInstanceUID, series[0].SOPInstanceUID
    )
    assert metadata["00080060"]["Value"] == ["CT"]
    assert "BulkDataURI" in metadata["7FE00010"]

    png = web.retrieve_instance_frames_rendered(
        study_uid,
        series[0].SeriesInstanceUID,
        series[0].SOPInstanceUID,
        frame_numbers=[1],
        media_types=("image/png",),
        params={"window": "40,400,linear"},
    )
    assert Image.open(io.BytesIO(png)).size == (128, 128)
    jpeg = web.retrieve_instance_rendered(
        mr.StudyInstanceUID,
        mr.SeriesInstanceUID,
        mr.SOPInstanceUID,
        media_types=("image/jpeg",),
        params={"quality": "70"},
    )
    assert jpeg[:2] == b"\xff\xd8"
    last_frame = requests.get(
        f"{live_http.url}/cases/{imaging_case}/dicomweb/studies/{mr.StudyInstanceUID}/series/"
        f"{mr.SeriesInstanceUID}/instances/{mr.SOPInstanceUID}/frames/10/rendered",
        headers={**factories.bearer(token), "Accept": "image/png"},
        timeout=30,
    )
    assert last_frame.status_code == 200 and last_frame.headers["Content-Type"] == "image/png"

    db.session.remove()
    views = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.entity_type == "dicom_instance", AuditEvent.action == "view"
        )
    ).scalars()
    hows = {event.detail["how"] for event in views}
    assert {"wado-rs", "metadata", "rendered frame 1", "rendered frame 10"} <= hows


def test_another_institution_gets_404_everywhere(app, world, imaging_case, live_http, tmp_path):
    path = dicom_files.ct_series(tmp_path, 1)[0]
    dicom.attach_files(actor_of(world.user("gp_ts1")), imaging_case, [("a.dcm", path)])
    db.session.commit()
    tokens = {name: factories.token_for(world.user(name)) for name in USERS}
    ds = pydicom.dcmread(path)
    root = f"{live_http.url}/cases/{imaging_case}/dicomweb"
    instance = (
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    urls = [
        f"{root}/studies",
        f"{root}/studies/{ds.StudyInstanceUID}/series",
        f"{root}/instances",
        instance,
        f"{instance}/metadata",
        f"{instance}/rendered",
        f"{instance}/frames/1/rendered",
        f"{live_http.url}/cases/{imaging_case}/files/dicom/1",
        f"{live_http.url}/cases/{imaging_case}",
    ]
    for outsider in ("gp_cm1", "ecg1", "card1"):
        token = tokens[outsider]
        for url in urls:
            response = requests.get(url, headers=factories.bearer(token), timeout=30)
            assert response.status_code == 404, (outsider, url, response.status_code)
        stow = client_for(live_http, imaging_case, token)
        with pytest.raises(requests.HTTPError) as refused:
            stow.store_instances([ds])
        assert refused.value.response.status_code == 404
    reader = tokens["rad1"]
    assert requests.get(urls[0], headers=factories.bearer(reader), timeout=30).status_code == 200
    admin = tokens["admin"]
    assert requests.get(urls[3], headers=factories.bearer(admin), timeout=30).status_code == 200
    anonymous = requests.get(urls[0], timeout=30)
    assert anonymous.status_code == 401


def test_stow_refuses_bad_parts_by_name_and_keeps_the_good(
    app, world, imaging_case, live_http, tmp_path
):
    token = factories.token_for(world.user("gp_ts1"))
    good = dicom_files.ct_series(tmp_path, 1)[0].read_bytes()
    bad = b"this is not DICOM"
    boundary = "b0undary"
    body = b""
    for part in (good, bad):
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    response = requests.post(
        f"{live_http.url}/cases/{imaging_case}/dicomweb/studies",
        data=body,
        headers={
            **factories.bearer(token),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        timeout=30,
    )
    assert response.status_code == 202
    payload = response.json()
    assert len(payload["00081199"]["Value"]) == 1 and len(payload["00081198"]["Value"]) == 1
    assert "part 2: not a DICOM file" in response.headers["Warning"]
    only_bad = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + bad
        + f"\r\n--{boundary}--\r\n".encode()
    )
    refused = requests.post(
        f"{live_http.url}/cases/{imaging_case}/dicomweb/studies",
        data=only_bad,
        headers={
            **factories.bearer(token),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        timeout=30,
    )
    assert refused.status_code == 409 and "not a DICOM file" in refused.headers["Warning"]
    db.session.remove()
    assert dicom.count_instances(imaging_case) == 1


def test_query_keys_are_checked(app, world, imaging_case, client):
    token = factories.token_for(world.user("gp_ts1"))
    root = f"/cases/{imaging_case}/dicomweb"
    bad_key = client.get(f"{root}/studies?Colour=blue", headers=factories.bearer(token))
    assert bad_key.status_code == 400 and bad_key.get_json()["error"]["field"] == "Colour"
    bad_date = client.get(f"{root}/studies?StudyDate=2026-01-01", headers=factories.bearer(token))
    assert bad_date.status_code == 400
    wrong_type = client.post(
        f"{root}/studies",
        data=b"x",
        headers={**factories.bearer(token), "Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
