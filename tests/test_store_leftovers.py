"""What crashed requests leave in the file store is removed by the clean-up job: spooled
bodies and staging folders in tmp, and stored objects no row names, each after its grace
period; temporary files are created readable by the service only."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

from telemed import clock
from telemed.extensions import db
from telemed.services import cleanup
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom
from tests import dicom_files
from tests.test_dicom_service import open_imaging_case


def age(path, hours: float) -> None:
    then = (clock.now() - timedelta(hours=hours)).timestamp()
    os.utime(path, (then, then), follow_symlinks=False)


def test_spooled_bodies_and_staging_folders_are_removed_once_old(app, world):
    content = dicom.store()
    staging = content.temp_dir()
    with content.create_private(staging / "body") as out:
        out.write(b"x" * 1000)  # a STOW body spooled by a request that was killed
    age(staging / "body", 7)
    age(staging, 7)
    fresh = content.temp_file(".dcm")  # a request at work now
    result = cleanup.run_all(clock.now())
    assert result["temporary_files"] == 1
    assert not staging.exists() and fresh.exists()


def test_objects_no_row_names_are_removed_after_the_grace(app, world, tmp_path):
    content = dicom.store()
    case = open_imaging_case(world)
    gp = actor_of(world.user("gp_ts1"))
    [kept] = dicom.attach_files(gp, case.id, [("ct.dcm", dicom_files.ct_series(tmp_path, 1)[0])])
    db.session.commit()
    orphan_file = tmp_path / "orphan.dcm"
    orphan_file.write_bytes(b"stored, then the request died before its row")
    young_file = tmp_path / "young.dcm"
    young_file.write_bytes(b"stored a minute ago; its row is on its way")
    orphan, _ = content.put_file(orphan_file)
    young, _ = content.put_file(young_file)
    for sha in (kept.sha256, orphan):
        age(content.path_of(sha), 49)
    result = cleanup.run_all(clock.now())
    assert result["orphan_objects"] == 1
    assert not content.exists(orphan)
    assert content.exists(kept.sha256) and content.exists(young)


def test_temporary_files_are_private(app):
    content = dicom.store()
    spooled = content.temp_dir() / "body"
    with content.create_private(spooled) as out:
        out.write(b"patient images")
    for path in (spooled, content.temp_file(".part")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spooled.parent.stat().st_mode) == 0o700


def test_instances_waiting_in_a_dicom_nodes_inbox_are_kept(app, world, tmp_path):
    from telemed.services.cases import dicom_inbox

    content = dicom.store()
    [received] = dicom.prepare(
        dicom_files.ct_series(tmp_path, 1)[0].read_bytes(), "ct.dcm"
    ).outcomes
    institution = world.users["gp_ts1"].institution_id
    assert dicom_inbox.receive(institution, "TS1_CT", received).status != "refused"
    db.session.commit()
    age(content.path_of(received.sha256), 49)
    cleanup.run_all(clock.now())
    assert content.exists(received.sha256)


def test_entries_of_an_uploaded_zip_are_staged_privately(app, tmp_path):
    from telemed.imaging import safezip

    content = dicom.store()
    staging = content.temp_dir()
    slices = dicom_files.ct_series(tmp_path / "ct", 2)
    archive = dicom_files.zip_of(
        tmp_path / "study.zip", {f"study/{p.name}": p.read_bytes() for p in slices}
    )
    expanded = safezip.expand(archive, staging)
    assert len(expanded.files) == 2
    for _name, staged in expanded.files:
        assert stat.S_IMODE(staged.stat().st_mode) == 0o600
