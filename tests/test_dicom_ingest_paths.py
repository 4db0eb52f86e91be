"""The ways a file reaches the index: read in process from memory (native data, small
header) or by a worker from a file; a STOW body held in memory or spooled; a batch indexed
in one flush, and what happens to the rest of a batch when one file is bad or repeated."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from telemed.extensions import db
from telemed.imaging import reading
from telemed.models.audit import AuditEvent
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom
from telemed.web import dicomweb
from tests import dicom_files, factories
from tests.test_dicom_service import open_imaging_case

NATIVE_SAMPLES = ("CT_small.dcm", "MR_small.dcm", "MR2_UNCR.dcm", "examples_rgb_color.dcm")
BOUNDARY = "b0undary"


@pytest.fixture
def gp(world):
    return actor_of(world.user("gp_ts1"))


def _refusal(function, *args) -> str:
    with pytest.raises(reading.Refused) as caught:
        function(*args)
    return str(caught.value)


@pytest.mark.parametrize("name", NATIVE_SAMPLES)
def test_in_process_reading_agrees_with_the_worker(name):
    path = dicom_files.sample(name)
    in_process = reading.inspect_native(path.read_bytes())
    assert in_process is not None, "native data with a small header is read in process"
    assert in_process == reading.inspect(str(path))


def test_what_the_in_process_reading_leaves_to_the_worker(tmp_path):
    compressed = dicom_files.sample("JPEG-LL.dcm").read_bytes()
    assert reading.inspect_native(compressed) is None
    cut = dicom_files.sample("CT_small.dcm").read_bytes()[:-5000]
    assert reading.inspect_native(cut) is None  # no pixel data element ends the file
    ds = pydicom.dcmread(dicom_files.sample("CT_small.dcm"))
    block = ds.private_block(0x0011, "telemed test", create=True)
    block.add_new(0x01, "OB", bytes(reading.HEADER_IN_PROCESS + 1024))
    big_header = dicom_files.dataset_bytes(ds)
    assert reading.inspect_native(big_header) is None
    path = tmp_path / "big.dcm"
    path.write_bytes(big_header)
    index = reading.inspect(str(path))
    assert index["decodable"] and "00111001" not in index["header_json"]  # bulk left out


def test_in_process_refusals_are_the_workers(tmp_path):
    for make in (
        dicom_files.short_pixels,
        dicom_files.huge_header,
        dicom_files.executable_preamble,
    ):
        path = make(tmp_path / f"{make.__name__}.dcm")
        assert _refusal(reading.inspect_native, path.read_bytes()) == _refusal(
            reading.inspect, str(path)
        )


def test_from_memory_and_from_a_spooled_file_the_index_is_the_same(
    app, world, gp, tmp_path, monkeypatch
):
    paths = [*dicom_files.ct_series(tmp_path / "ct", 2), dicom_files.sample("MR2_UNCR.dcm")]
    files = [(p.name, p) for p in paths]
    in_memory = open_imaging_case(world)
    first = dicom.attach_files(gp, in_memory.id, files)
    monkeypatch.setattr(dicom, "IN_MEMORY_BYTES", 0)  # every file read by a worker from disk
    spooled = open_imaging_case(world)
    second = dicom.attach_files(gp, spooled.id, files)
    assert [o.status for o in first] == [o.status for o in second] == ["stored"] * 3
    assert [o.sha256 for o in first] == [o.sha256 for o in second]
    assert [o.index for o in first] == [o.index for o in second]
    for outcome in first:
        stored = dicom.store().path_of(outcome.sha256).read_bytes()
        assert stored[:128] == bytes(128)


def test_a_batch_keeps_its_good_files_when_one_is_bad_or_repeated(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    one, two = dicom_files.ct_series(tmp_path / "ct", 2)
    files = [
        ("one.dcm", one),
        ("pixels.dcm", dicom_files.short_pixels(tmp_path / "pixels.dcm")),
        ("two.dcm", two),
        ("one-again.dcm", one),
    ]
    outcomes = {o.filename: o for o in dicom.record(gp, case, _prepared(files))}
    assert outcomes["one.dcm"].status == outcomes["two.dcm"].status == "stored"
    assert outcomes["pixels.dcm"].status == "refused"
    again = outcomes["one-again.dcm"]
    assert again.status == "duplicate" and again.instance_id == outcomes["one.dcm"].instance_id
    db.session.commit()
    assert dicom.count_instances(case.id) == 2
    attached = db.session.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "attach", AuditEvent.entity_type == "dicom_instance")
    ).scalar_one()
    assert attached == 2


def test_an_instance_attached_meanwhile_does_not_cost_the_rest_of_the_batch(
    app, world, gp, tmp_path, monkeypatch
):
    case = open_imaging_case(world)
    one, two, three = dicom_files.ct_series(tmp_path / "ct", 3)
    dicom.attach_files(gp, case.id, [("two.dcm", two)])
    # As if another request attached two.dcm after this batch looked for duplicates.
    monkeypatch.setattr(dicom, "_existing_instances", lambda case_id, sops: {})
    files = [("one.dcm", one), ("two.dcm", two), ("three.dcm", three)]
    outcomes = {o.filename: o for o in dicom.record(gp, case, _prepared(files))}
    assert outcomes["one.dcm"].status == outcomes["three.dcm"].status == "stored"
    assert outcomes["two.dcm"].status == "duplicate"
    db.session.commit()
    assert dicom.count_instances(case.id) == 3


def _prepared(files) -> dicom.Prepared:
    prepared = dicom.Prepared()
    for name, path in files:
        prepared.outcomes.extend(dicom.prepare(path, name).outcomes)
    return prepared


def _multipart(parts: list[bytes]) -> bytes:
    body = b""
    for part in parts:
        body += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part
        body += b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize("spooled", [False, True], ids=["in-memory", "spooled"])
def test_stow_from_memory_or_from_a_spooled_body(
    app, world, client, tmp_path, monkeypatch, spooled
):
    if spooled:  # the body goes to a file, and each part to its own file
        monkeypatch.setattr(dicomweb, "BODY_IN_MEMORY", 0)
        monkeypatch.setattr(dicom, "IN_MEMORY_BYTES", 0)
    case_id = open_imaging_case(world).id
    db.session.commit()
    token = factories.token_for(world.user("gp_ts1"))
    series = [p.read_bytes() for p in dicom_files.ct_series(tmp_path / "ct", 2)]
    parts = [
        *series,
        dicom_files.short_pixels(tmp_path / "pixels.dcm").read_bytes(),
        dicom_files.sample("JPEG-LL.dcm").read_bytes(),
        series[0],
    ]
    response = client.post(
        f"/cases/{case_id}/dicomweb/studies",
        data=_multipart(parts),
        headers={
            **factories.bearer(token),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        },
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    payload = response.get_json()
    # Three stored; the repeat of part 1 is a warning, not a second reference (PS3.18).
    assert len(payload["00081199"]["Value"]) == 3
    assert len(payload["00081198"]["Value"]) == 1
    assert "part 3: pixel data is shorter than declared" in response.headers["Warning"]
    assert "part 5: SOP instance" in " ".join(response.headers.getlist("Warning"))
    db.session.remove()
    instances = dicom.instances_of(case_id)
    assert len(instances) == 3
    for instance in instances:
        stored = dicom.store().path_of(instance.sha256).read_bytes()
        assert stored[:128] == bytes(128) and len(stored) == instance.size_bytes


def test_a_header_with_unusual_values_serialises_like_pydicom():
    ds = pydicom.dcmread(dicom_files.sample("CT_small.dcm"))
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Zhang^San=张^三"  # ideographic component: pydicom's conversion
    ds.WindowCenter = ["40", "400"]
    ds.add_new(0x00080081, "ST", "Some street 1 ")
    data = dicom_files.dataset_bytes(ds)
    index = reading.inspect_native(data)
    assert index is not None
    header = index["header_json"]
    assert header["00080008"]["Value"] == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert header["00281050"]["Value"] == [40.0, 400.0]
    assert header["00080081"]["Value"] == ["Some street 1"]
    assert header["00100010"]["Value"][0]["Alphabetic"] == "Zhang^San"
    expected = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data)).to_json_dict()
    for tag in ("00080008", "00281050", "00080081", "00100010", "00200032", "00280030"):
        assert header[tag] == expected[tag]


@pytest.mark.parametrize("in_flight", [1, dicom.IN_FLIGHT])
def test_a_batch_in_memory_keeps_its_order_whichever_path_each_file_takes(
    app, tmp_path, monkeypatch, in_flight
):
    # One file handed on at a time must still finish (each one done frees the next).
    monkeypatch.setattr(dicom, "IN_FLIGHT", in_flight)
    series = [p.read_bytes() for p in dicom_files.ct_series(tmp_path / "ct", 4)]
    archive = dicom_files.zip_of(tmp_path / "two.zip", {"a.dcm": series[0], "b.dcm": series[1]})
    files = {
        "ct-1": series[0],
        "jpeg": dicom_files.sample("JPEG-LL.dcm").read_bytes(),  # a worker decodes it
        "ct-3": series[2],
        "zip": archive.read_bytes(),  # expanded, its entries checked
        "pixels": dicom_files.short_pixels(tmp_path / "pixels.dcm").read_bytes(),
        "ct-4": series[3],
        "text": b"not DICOM at all",
    }
    loads = [(name, (lambda data=data: data)) for name, data in files.items()]
    results = dicom.prepare_in_memory(loads)
    assert [[o.filename for o in outcomes] for outcomes in results] == [
        ["ct-1"],
        ["jpeg"],
        ["ct-3"],
        ["zip:a.dcm", "zip:b.dcm"],
        ["pixels"],
        ["ct-4"],
        ["text"],
    ]
    statuses = [o.status for outcomes in results for o in outcomes]
    assert statuses == ["stored"] * 5 + ["refused", "stored", "refused"]
    for outcomes in results:
        for outcome in outcomes:
            if outcome.status == "stored":
                path = dicom.store().path_of(outcome.sha256)
                assert path.stat().st_size == outcome.size_bytes
