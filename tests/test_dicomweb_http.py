"""DICOMweb per case over real HTTP, driven by the stock dicomweb-client package."""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings

import numpy as np
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

JPEG = "1.2.840.10008.1.2.4.50"
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
        f"{instance}/frames/1",
        f"{instance}/bulkdata/7FE00010",
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/rendered",
        f"{root}/studies/{ds.StudyInstanceUID}/rendered",
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


def _study(folder, count: int, **attributes) -> list[pydicom.Dataset]:
    """A CT study of ``count`` slices with ``attributes`` set on every slice."""
    slices = [pydicom.dcmread(p) for p in dicom_files.ct_series(folder, count)]
    for ds in slices:
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
    return slices


def _found(web_call, **filters) -> list[pydicom.Dataset]:
    return [pydicom.Dataset.from_json(item) for item in web_call(search_filters=filters)]


def test_qido_matches_the_required_keys_with_default_attributes(
    app, world, imaging_case, live_http, tmp_path
):
    token = factories.token_for(world.user("gp_ts1"))
    web = client_for(live_http, imaging_case, token)
    garcia = _study(
        tmp_path / "a",
        2,
        PatientName="García^José",
        StudyTime="093000",
        StudyID="S-1",
        ReferringPhysicianName="Li^Wei",
        PatientBirthDate="19491231",
        PatientSex="M",
    )
    zhang = _study(
        tmp_path / "b",
        1,
        SpecificCharacterSet="ISO_IR 192",
        PatientName="Zhang^San=张^三",
        StudyTime="161500.25",
        StudyID="S-2",
        PatientBirthDate="19800102",
    )
    mr = pydicom.dcmread(dicom_files.sample("MR_small.dcm"))
    mr.PatientName = "Wang^Wu"
    web.store_instances([*garcia, *zhang, mr])

    def studies(**filters) -> list[str]:
        return sorted(d.StudyID for d in _found(web.search_for_studies, **filters))

    assert studies(PatientName="garcía^josé") == ["S-1"]  # names: case-insensitive
    assert studies(PatientName="Gar*") == ["S-1"]
    assert studies(PatientName="Zh?ng*") == ["S-2"]
    assert studies(PatientName="garcia") == []
    assert studies(PatientName="garcia jo", fuzzymatching="true") == ["S-1"]
    assert studies(PatientName="张", fuzzymatching="true") == ["S-2"]
    assert studies(PatientName="三", fuzzymatching="true") == ["S-2"]
    assert studies(PatientName="san", fuzzymatching="true") == ["S-2"]
    assert studies(PatientName="wei", fuzzymatching="true") == []
    assert studies(ModalitiesInStudy="CT") == ["S-1", "S-2"]
    assert len(_found(web.search_for_studies, ModalitiesInStudy="MR,US")) == 1
    assert studies(StudyTime="0900-1000") == ["S-1"]
    assert studies(StudyTime="1600-") == ["4MR1", "S-2"]  # MR_small's is 185059
    assert studies(StudyTime="1600-1800") == ["S-2"]
    assert studies(StudyID="S-2") == ["S-2"]
    assert studies(ReferringPhysicianName="LI^WEI") == ["S-1"]
    assert studies(PatientBirthDate="-19500101") == ["S-1"]
    assert studies(PatientBirthDate="19800101-19801231") == ["S-2"]
    assert studies(AccessionNumber="*", StudyID="S-1") == ["S-1"]

    first = _found(web.search_for_studies, StudyID="S-1")[0]
    assert first.ReferringPhysicianName == "Li^Wei" and first.PatientBirthDate == "19491231"
    assert first.PatientSex == "M" and first.StudyID == "S-1"
    assert first.NumberOfStudyRelatedInstances == 2 and first.InstanceAvailability == "ONLINE"
    assert first.RetrieveURL.endswith(f"/studies/{garcia[0].StudyInstanceUID}")

    study_uid = garcia[0].StudyInstanceUID
    assert len(_found(web.search_for_series, SeriesNumber="1")) == 3  # MR_small's too
    assert _found(web.search_for_series, SeriesNumber="7") == []
    instances = _found(web.search_for_instances, InstanceNumber="2", StudyInstanceUID=study_uid)
    assert [i.SOPInstanceUID for i in instances] == [garcia[1].SOPInstanceUID]
    assert instances[0].BitsAllocated == 16 and instances[0].InstanceAvailability == "ONLINE"
    assert instances[0].NumberOfFrames == 1 and instances[0].Rows == 128
    assert len(_found(web.search_for_instances, SOPClassUID=mr.SOPClassUID)) == 1
    assert len(_found(web.search_for_instances, SOPClassUID="1.2.840.10008.5.1.4.1.1.2")) == 3

    # includefield, limit and offset (a Warning while more remain).
    with_fields = web.search_for_instances(study_uid, fields=["SliceLocation", "00180050"])
    assert {"00201041", "00180050"} <= set(with_fields[0])
    everything = web.search_for_instances(study_uid, fields=["all"])
    assert "00280030" in everything[0]  # PixelSpacing, not a default attribute
    root = f"{live_http.url}/cases/{imaging_case}/dicomweb"
    page = requests.get(
        f"{root}/instances?limit=2&offset=1", headers=factories.bearer(token), timeout=30
    )
    assert len(page.json()) == 2 and "additional results" in page.headers["Warning"]
    last = requests.get(f"{root}/instances?offset=3", headers=factories.bearer(token), timeout=30)
    assert len(last.json()) == 1 and "Warning" not in last.headers


@pytest.mark.parametrize(
    "query, field",
    [
        ("Colour=blue", "Colour"),
        ("StudyDate=2026-01-01", "StudyDate"),
        ("StudyTime=25h", "StudyTime"),
        ("fuzzymatching=maybe", "fuzzymatching"),
        ("limit=ten", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("SeriesNumber=one", "SeriesNumber"),
        ("StudyInstanceUID=1.2.*", "StudyInstanceUID"),
        (
            "ReferencedSeriesSequence.SeriesInstanceUID=1.2",
            "ReferencedSeriesSequence.SeriesInstanceUID",
        ),
        ("includefield=NoSuchThing", "NoSuchThing"),
        ("PixelData=1", "PixelData"),
    ],
)
def test_a_bad_query_is_400_naming_the_parameter(app, world, imaging_case, client, query, field):
    token = factories.token_for(world.user("gp_ts1"))
    answer = client.get(
        f"/cases/{imaging_case}/dicomweb/studies?{query}", headers=factories.bearer(token)
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == field


def test_media_types_not_served_are_406_and_401_names_the_scheme(
    app, world, imaging_case, live_http, tmp_path
):
    token = factories.token_for(world.user("gp_ts1"))
    path = dicom_files.ct_series(tmp_path, 1)[0]
    dicom.attach_files(actor_of(world.user("gp_ts1")), imaging_case, [("a.dcm", path)])
    db.session.commit()
    ds = pydicom.dcmread(path)
    root = f"{live_http.url}/cases/{imaging_case}/dicomweb"
    instance = (
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )

    def get(url: str, accept: str) -> requests.Response:
        return requests.get(url, headers={**factories.bearer(token), "Accept": accept}, timeout=30)

    for url, accept in [
        (instance, "application/pdf"),
        (
            instance,
            'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50',
        ),
        (f"{instance}/rendered", "image/webp"),
        (f"{instance}/metadata", "application/dicom+xml"),
        (f"{instance}/metadata", 'multipart/related; type="application/dicom+xml"'),
        (f"{root}/studies", "application/dicom+xml"),
        (f"{instance}/frames/1", 'multipart/related; type="image/jpeg"'),
        (
            f"{instance}/frames/1",
            f'multipart/related; type="application/octet-stream"; transfer-syntax={JPEG}',
        ),
    ]:
        answer = get(url, accept)
        assert answer.status_code == 406, (url, accept, answer.status_code)
        assert answer.json()["error"]["field"] == "Accept"
    gif = get(f"{instance}/rendered", "image/gif")
    assert gif.status_code == 200 and gif.content[:4] == b"GIF8"
    assert get(f"{instance}/metadata", "application/json").status_code == 200
    assert get(f"{instance}/frames/0", "*/*").status_code == 400
    missing = get(f"{instance}/frames/2", "*/*")
    assert missing.status_code == 404 and "the instance has 1" in missing.json()["error"]["message"]
    assert get(f"{instance}/bulkdata/00280010", "*/*").status_code == 404
    anonymous = requests.get(f"{root}/studies", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")


def test_implicit_and_big_endian_instances_come_as_explicit_little_endian(
    app, world, imaging_case, live_http, tmp_path
):
    """The default syntax of application/dicom is Explicit VR Little Endian (PS3.18): an
    uncompressed file in another syntax is rewritten, same UIDs and pixels, never a 409."""
    token = factories.token_for(world.user("gp_ts1"))
    web = client_for(live_http, imaging_case, token)
    source = pydicom.dcmread(dicom_files.ct_series(tmp_path, 1)[0])
    pixels = source.pixel_array
    paths = []
    for syntax, little in (("1.2.840.10008.1.2", True), ("1.2.840.10008.1.2.2", False)):
        ds = pydicom.dcmread(dicom_files.ct_series(tmp_path / syntax, 1)[0])
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<" if little else ">")).tobytes()
        path = tmp_path / f"{syntax}.dcm"
        pydicom.dcmwrite(path, ds, implicit_vr=little, little_endian=little, force_encoding=True)
        paths.append(path)
    outcomes = dicom.attach_files(
        actor_of(world.user("gp_ts1")), imaging_case, [(p.name, p) for p in paths]
    )
    db.session.commit()
    assert [o.status for o in outcomes] == ["stored", "stored"]
    for path in paths:
        sent = pydicom.dcmread(path)
        uids = (sent.StudyInstanceUID, sent.SeriesInstanceUID, sent.SOPInstanceUID)
        url = (
            f"{live_http.url}/cases/{imaging_case}/dicomweb/studies/{uids[0]}"
            f"/series/{uids[1]}/instances/{uids[2]}"
        )
        answer = requests.get(
            url, headers={**factories.bearer(token), "Accept": "application/dicom"}, timeout=30
        )
        assert answer.status_code == 200
        got = pydicom.dcmread(io.BytesIO(answer.content))
        assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert got.SOPInstanceUID == uids[2] == got.file_meta.MediaStorageSOPInstanceUID
        assert np.array_equal(got.pixel_array, pixels)
        default = web.retrieve_instance(*uids, media_types=("application/dicom",))
        assert default.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def test_stow_warns_of_repeats_in_a_batch_and_keeps_hashed_uids(
    app, world, imaging_case, live_http, tmp_path
):
    token = factories.token_for(world.user("gp_ts1"))
    web = client_for(live_http, imaging_case, token)
    one = pydicom.dcmread(dicom_files.ct_series(tmp_path / "one", 1)[0])
    hashed = pydicom.dcmread(dicom_files.ct_series(tmp_path / "hashed", 1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of what real anonymisers write
        hashed.StudyInstanceUID = hashlib.sha256(b"study").hexdigest()  # 64 characters
        hashed.SeriesInstanceUID = hashlib.sha256(b"series").hexdigest()[:40]
        hashed.SOPInstanceUID = str(uuid.uuid4())
        hashed.file_meta.MediaStorageSOPInstanceUID = hashed.SOPInstanceUID
        hashed_bytes = dicom_files.dataset_bytes(hashed)
    root = f"{live_http.url}/cases/{imaging_case}/dicomweb"
    boundary = "batch"
    body = b""
    for data in [dicom_files.dataset_bytes(one)] * 3 + [hashed_bytes]:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    answer = requests.post(
        f"{root}/studies",
        data=body,
        headers={
            **factories.bearer(token),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        timeout=30,
    )
    assert answer.status_code == 202
    referenced = answer.json()["00081199"]["Value"]
    assert [r["00081155"]["Value"][0] for r in referenced] == [
        one.SOPInstanceUID,
        hashed.SOPInstanceUID,
    ]
    assert "00081198" not in answer.json()
    said = answer.headers["Warning"]
    assert said.count("was sent more than once in this request") == 2
    assert "part 2:" in said and "part 3:" in said
    assert "does not follow the UID grammar" in said
    db.session.remove()
    assert dicom.count_instances(imaging_case) == 2
    stored = [
        i for i in dicom.instances_of(imaging_case) if i.sop_instance_uid == hashed.SOPInstanceUID
    ]
    assert "StudyInstanceUID" in stored[0].notes and "UID grammar" in stored[0].notes
    found = web.search_for_studies(search_filters={"StudyInstanceUID": hashed.StudyInstanceUID})
    assert len(found) == 1
    # dicomweb-client itself refuses such UIDs in a path: plain requests.
    back = requests.get(
        f"{root}/studies/{hashed.StudyInstanceUID}/series/{hashed.SeriesInstanceUID}"
        f"/instances/{hashed.SOPInstanceUID}",
        headers={**factories.bearer(token), "Accept": "application/dicom"},
        timeout=30,
    )
    assert back.status_code == 200 and back.content[128:] == hashed_bytes[128:]

    too_long = pydicom.dcmread(dicom_files.ct_series(tmp_path / "long", 1)[0])
    spaced = pydicom.dcmread(dicom_files.ct_series(tmp_path / "spaced", 1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        too_long.SOPInstanceUID = "1." * 33
        spaced.SeriesInstanceUID = "1.2 3/4"
        bad = [dicom_files.dataset_bytes(ds) for ds in (too_long, spaced)]
    body = b""
    for data in bad:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    answer = requests.post(
        f"{root}/studies",
        data=body,
        headers={
            **factories.bearer(token),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        timeout=30,
    )
    assert answer.status_code == 409
    assert "SOPInstanceUID is missing or longer than 64 characters" in answer.headers["Warning"]
    assert "SeriesInstanceUID holds characters no identifier may carry" in answer.headers["Warning"]


def test_other_bulk_values_have_uris_that_return_their_bytes(
    app, world, imaging_case, live_http, tmp_path
):
    """An ICC profile (OB) and, in a big endian file, a long palette table (OW): left out
    of the metadata's values, named by BulkDataURIs that return them little endian."""
    token = factories.token_for(world.user("gp_ts1"))
    web = client_for(live_http, imaging_case, token)
    profile = bytes(range(256)) * 40  # 10 KB: over the inline limit
    table = np.arange(8192, dtype=np.uint16)
    plain = pydicom.dcmread(dicom_files.ct_series(tmp_path / "a", 1)[0])
    plain.ICCProfile = profile
    big = pydicom.dcmread(dicom_files.ct_series(tmp_path / "b", 1)[0])
    pixels = big.pixel_array
    big.add_new(0x00281201, "OW", table.astype(">u2").tobytes())
    big.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.2"
    big.PixelData = pixels.astype(pixels.dtype.newbyteorder(">")).tobytes()
    big_path = tmp_path / "big.dcm"
    pydicom.dcmwrite(big_path, big, implicit_vr=False, little_endian=False, force_encoding=True)
    plain_path = tmp_path / "plain.dcm"
    plain.save_as(plain_path, enforce_file_format=True)
    dicom.attach_files(
        actor_of(world.user("gp_ts1")),
        imaging_case,
        [("plain.dcm", plain_path), ("big.dcm", big_path)],
    )
    db.session.commit()
    root = f"{live_http.url}/cases/{imaging_case}/dicomweb"
    for ds, tag, expected in (
        (plain, "00282000", profile),
        (big, "00281201", table.astype("<u2").tobytes()),
    ):
        uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        metadata = web.retrieve_instance_metadata(*uids)
        uri = metadata[tag]["BulkDataURI"]
        assert "Value" not in metadata[tag] and "InlineBinary" not in metadata[tag]
        assert uri.endswith(f"/instances/{uids[2]}/bulkdata/{tag}")
        uri = root + uri.split("/dicomweb", 1)[1]  # dicomweb-client's Host lacks the port
        assert web.retrieve_bulkdata(uri) == [expected]
        found = web.search_for_instances(uids[0], uids[1], fields=[tag])
        assert found[0][tag]["BulkDataURI"].endswith(f"/bulkdata/{tag}")
    missing = requests.get(
        f"{root}/studies/{plain.StudyInstanceUID}/series/{plain.SeriesInstanceUID}"
        f"/instances/{plain.SOPInstanceUID}/bulkdata/00100010",
        headers=factories.bearer(token),
        timeout=30,
    )
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "tag"


def test_a_truncated_part_is_refused_without_naming_a_server_path(
    app, world, imaging_case, live_http
):
    token = factories.token_for(world.user("gp_ts1"))
    boundary = "short"
    data = dicom_files.sample("emri_small_jpeg_2k_lossless_too_short.dcm").read_bytes()
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = requests.post(
        f"{live_http.url}/cases/{imaging_case}/dicomweb/studies",
        data=body,
        headers={
            **factories.bearer(token),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        timeout=30,
    )
    assert answer.status_code == 409
    said = answer.headers["Warning"]
    assert "part 1: truncated DICOM file" in said
    assert "/" not in said.split("part 1:")[1], said
