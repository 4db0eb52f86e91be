"""Attaching DICOM to cases: indexing, storage by content, dedup, refusals, export."""

from __future__ import annotations

import zipfile

import pydicom
import pytest

from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.errors import Conflict, Forbidden, NotFound
from telemed.extensions import db
from telemed.imaging.storage import sha256_of
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, dicom
from tests import dicom_files


def open_imaging_case(world, doctor="gp_ts1"):
    return cases.open_case(
        actor_of(world.user(doctor)),
        patient_id=world.patients["TS1"][0].id,
        kind=CaseKind.IMAGING_READ,
        question="Nodule on the right lung?",
        target_department_id=world.departments["RAD"].id,
    )


@pytest.fixture
def gp(world):
    return actor_of(world.user("gp_ts1"))


def test_a_series_is_indexed_stored_by_content_and_submittable(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    paths = dicom_files.ct_series(tmp_path / "ct", 3)
    outcomes = dicom.attach_files(gp, case.id, [(p.name, p) for p in paths])
    assert [o.status for o in outcomes] == ["stored"] * 3
    instances = dicom.instances_of(case.id)
    assert {i.modality for i in instances} == {"CT"}
    assert [i.instance_number for i in instances] == [1, 2, 3]
    first = instances[0]
    assert first.rows == 128 and first.columns == 128 and first.number_of_frames == 1
    assert first.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert first.header_patient_name == "Zhang^San"
    assert "00100010" in first.header_json and "7FE00010" not in first.header_json
    stored = dicom.store().path_of(first.sha256)
    assert sha256_of(stored) == first.sha256
    assert stored.read_bytes()[:128] == bytes(128)
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    assert case.status is CaseStatus.SUBMITTED


def test_a_resent_instance_is_one_row(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    path = dicom_files.ct_series(tmp_path, 1)[0]
    dicom.attach_files(gp, case.id, [("a.dcm", path)])
    again = dicom.attach_files(gp, case.id, [("again.dcm", path)])
    assert again[0].status == "duplicate"
    assert dicom.count_instances(case.id) == 1


def test_tiff_preamble_is_accepted_and_zeroed(app, world, gp):
    case = open_imaging_case(world)
    source = dicom_files.sample("MR2_UNCR.dcm")
    assert source.read_bytes()[:4] == b"II*\x00"
    outcome = dicom.attach_files(gp, case.id, [("MR2_UNCR.dcm", source)])[0]
    assert outcome.status == "stored"
    instance = dicom.instances_of(case.id)[0]
    assert "TIFF" in instance.notes
    stored = dicom.store().path_of(instance.sha256).read_bytes()
    assert stored[:128] == bytes(128) and stored[128:] == source.read_bytes()[128:]


@pytest.mark.parametrize(
    ("name", "decodable"),
    [
        ("JPEG-LL.dcm", True),  # JPEG lossless (libjpeg)
        ("emri_small_jpeg_ls_lossless.dcm", True),  # JPEG-LS
        ("emri_small_jpeg_2k_lossless.dcm", True),  # JPEG 2000 (openjpeg)
        ("emri_small_RLE.dcm", True),  # RLE
        ("examples_ybr_color.dcm", True),  # JPEG baseline, YBR_FULL_422, 30 frames
        ("liver_deflate.dcm", False),  # Deflated Image Frame Compression: nothing decodes it
    ],
)
def test_compressed_syntaxes_decode_or_are_flagged(app, world, gp, name, decodable):
    case = open_imaging_case(world)
    outcome = dicom.attach_files(gp, case.id, [(name, dicom_files.sample(name))])[0]
    assert outcome.status == "stored", outcome.reason
    instance = dicom.instances_of(case.id)[0]
    assert instance.decodable is decodable
    if not decodable:
        assert "1.2.840.10008.1.2.8.1" in instance.notes


def test_bad_files_are_refused_with_reasons_and_the_good_ones_kept(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    not_dicom = tmp_path / "notes.txt"
    not_dicom.write_text("hello")
    cut = tmp_path / "cut.dcm"  # the file ends in the middle of its pixel data
    cut.write_bytes(dicom_files.sample("CT_small.dcm").read_bytes()[:-5000])
    files = [
        ("good.dcm", dicom_files.ct_series(tmp_path / "ct", 1)[0]),
        ("notes.txt", not_dicom),
        ("short.dcm", dicom_files.sample("emri_small_jpeg_2k_lossless_too_short.dcm")),
        ("mz.dcm", dicom_files.executable_preamble(tmp_path / "mz.dcm")),
        ("huge.dcm", dicom_files.huge_header(tmp_path / "huge.dcm")),
        ("pixels.dcm", dicom_files.short_pixels(tmp_path / "pixels.dcm")),
        ("cut.dcm", cut),
    ]
    outcomes = {o.filename: o for o in dicom.attach_files(gp, case.id, files)}
    assert outcomes["good.dcm"].status == "stored"
    reasons = {name: o.reason for name, o in outcomes.items() if o.status == "refused"}
    assert "not a DICOM file" in reasons["notes.txt"]
    assert "truncated" in reasons["short.dcm"]
    assert "executable" in reasons["mz.dcm"]
    assert "60000×60000" in reasons["huge.dcm"]
    assert "shorter than declared" in reasons["pixels.dcm"]
    assert "shorter than declared" in reasons["cut.dcm"] or "truncated" in reasons["cut.dcm"]
    assert dicom.count_instances(case.id) == 1


def test_zip_of_a_study_folder_with_hostile_entries(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    series = dicom_files.ct_series(tmp_path / "ct", 2)
    archive = dicom_files.zip_of(
        tmp_path / "study.zip",
        {
            "STUDY/SE1/IM1": series[0].read_bytes(),
            "STUDY/SE1/IM2": series[1].read_bytes(),
            "DICOMDIR": b"not really",
            "../escape.dcm": series[0].read_bytes(),
            "/etc/absolute.dcm": series[0].read_bytes(),
        },
        symlinks={"link.dcm": "/etc/passwd"},
    )
    outcomes = {o.filename: o for o in dicom.attach_files(gp, case.id, [("study.zip", archive)])}
    assert outcomes["study.zip:STUDY/SE1/IM1"].status == "stored"
    assert outcomes["study.zip:STUDY/SE1/IM2"].status == "stored"
    assert outcomes["study.zip:DICOMDIR"].status == "skipped"
    assert "'..'" in outcomes["study.zip:../escape.dcm"].reason
    assert "absolute" in outcomes["study.zip:/etc/absolute.dcm"].reason
    assert "symbolic link" in outcomes["study.zip:link.dcm"].reason
    assert dicom.count_instances(case.id) == 2
    storage = dicom.store().root
    assert not (storage.parent / "escape.dcm").exists()
    assert all(storage in p.resolve().parents for p in storage.rglob("*") if p.is_file())


def test_zip_bomb_is_refused_quickly(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    bomb = dicom_files.zip_bomb(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 2 * 1024**2
    outcome = dicom.attach_files(gp, case.id, [("bomb.zip", bomb)])[0]
    assert outcome.status == "refused" and "zip bomb" in outcome.reason


def test_only_the_requester_attaches_and_only_to_a_draft(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    path = dicom_files.ct_series(tmp_path, 1)[0]
    with pytest.raises(Forbidden):
        dicom.attach_files(actor_of(world.user("rad1")), case.id, [("a.dcm", path)])
    with pytest.raises(NotFound):
        dicom.attach_files(actor_of(world.user("gp_cm1")), case.id, [("a.dcm", path)])
    dicom.attach_files(gp, case.id, [("a.dcm", path)])
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    with pytest.raises(Conflict):
        dicom.attach_files(gp, case.id, [("b.dcm", dicom_files.sample("MR_small.dcm"))])


def test_identity_mismatch_is_a_warning(app, world, gp):
    case = open_imaging_case(world)
    dicom.attach_files(gp, case.id, [("ct.dcm", dicom_files.sample("CT_small.dcm"))])
    study = dicom.studies_of(case)[0]
    assert study.header_patient_name == "CompressedSamples^CT1"
    assert any(w.field == "name" and w.in_file == "CompressedSamples^CT1" for w in study.warnings)


def test_deidentified_export_removes_identity_and_keeps_references(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    paths = dicom_files.ct_series(tmp_path / "ct", 2)
    original = pydicom.dcmread(paths[0])
    original.add_new(0x00091001, "LO", "private secret")
    original.save_as(paths[0])
    dicom.attach_files(gp, case.id, [(p.name, p) for p in paths])
    db.session.commit()
    archive = dicom.export_deidentified(gp, case.id, original.StudyInstanceUID)
    with zipfile.ZipFile(archive) as bundle:
        names = sorted(bundle.namelist())
        datasets = [pydicom.dcmread(bundle.open(name)) for name in names]
    archive.unlink()
    assert len(datasets) == 2
    for ds in datasets:
        assert str(ds.PatientName).startswith("CASE") and ds.PatientIdentityRemoved == "YES"
        assert ds.StudyInstanceUID != original.StudyInstanceUID
        assert ds.SOPClassUID == original.SOPClassUID
        assert not any(element.tag.is_private for element in ds)
        assert "InstitutionName" not in ds and ds.get("StudyDate", "") == ""
        assert ds.preamble == bytes(128)
    assert datasets[0].StudyInstanceUID == datasets[1].StudyInstanceUID
    assert datasets[0].SeriesInstanceUID == datasets[1].SeriesInstanceUID
    assert datasets[0].SOPInstanceUID != datasets[1].SOPInstanceUID


def image_of(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.copy()


def test_renders_respect_photometry_and_are_cached(app, world, gp):
    case = open_imaging_case(world)
    names = [
        "CT_small.dcm",
        "RG3_J2KI.dcm",
        "examples_palette.dcm",
        "examples_ybr_color.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
        "US1_J2KI.dcm",
        "emri_small.dcm",
        "examples_rgb_color.dcm",
        "MR2_J2KI.dcm",
    ]
    dicom.attach_files(gp, case.id, [(n, dicom_files.sample(n)) for n in names])
    by_name = {i.original_filename: i for i in dicom.instances_of(case.id)}
    modes = {}
    for name, instance in by_name.items():
        path = dicom.rendered_frame(
            instance, frame=0, media_type="image/png", window=None, quality=90, viewport=None
        )
        image = image_of(path)
        modes[name] = image.mode
        assert image.size == (instance.columns, instance.rows)
        again = dicom.rendered_frame(
            instance, frame=0, media_type="image/png", window=None, quality=90, viewport=None
        )
        assert again == path
    assert modes["CT_small.dcm"] == "L" and modes["examples_palette.dcm"] == "RGB"
    assert modes["examples_ybr_color.dcm"] == "RGB" and modes["US1_J2KI.dcm"] == "RGB"
    assert modes["examples_rgb_color.dcm"] == "RGB" and modes["MR2_J2KI.dcm"] == "L"
    # MONOCHROME1: the background (lowest stored values) is shown white.
    cr = image_of(
        dicom.rendered_frame(
            by_name["RG3_J2KI.dcm"],
            frame=0,
            media_type="image/png",
            window=None,
            quality=90,
            viewport=None,
        )
    )
    raw = pydicom.dcmread(dicom_files.sample("RG3_J2KI.dcm")).pixel_array
    y, x = divmod(int(raw.argmin()), raw.shape[1])
    assert cr.getpixel((x, y)) > 200
    # A window narrows the CT to soft tissue; a different window is a different render.
    ct = by_name["CT_small.dcm"]
    soft = dicom.rendered_frame(
        ct,
        frame=0,
        media_type="image/jpeg",
        window={"center": 40, "width": 400, "function": "LINEAR"},
        quality=80,
        viewport=(64, 64),
    )
    assert image_of(soft).size == (64, 64) and soft.suffix == ".jpg"
    last = dicom.rendered_frame(
        by_name["emri_small.dcm"],
        frame=9,
        media_type="image/png",
        window=None,
        quality=90,
        viewport=None,
    )
    assert image_of(last).size == (64, 64)
    with pytest.raises(NotFound):
        dicom.rendered_frame(
            by_name["emri_small.dcm"],
            frame=10,
            media_type="image/png",
            window=None,
            quality=90,
            viewport=None,
        )
