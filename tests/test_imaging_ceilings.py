"""Resource ceilings for imaging: a frame over the render budget is refused at ingest
with a clear message; a frame that failed to render is remembered, not retried; one user
has a bounded number of renders at a time; no decompressed copy beyond a set bound."""

from __future__ import annotations

import time

import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from telemed.errors import Conflict, TooManyRequests
from telemed.extensions import db
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom
from tests import dicom_files, factories
from tests.test_dicom_service import open_imaging_case


def header_of_size(target, rows: int, columns: int):
    ds = pydicom.dcmread(dicom_files.sample("MR_small.dcm"))
    ds.Rows, ds.Columns = rows, columns
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(target, enforce_file_format=True)
    return target


def broken_jpeg(target):
    """A JPEG image whose compressed frame is not JPEG: stored, but never renders."""
    ds = pydicom.dcmread(dicom_files.sample("CT_small.dcm"))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([b"\xff\xd8 not a jpeg at all " * 20])
    ds["PixelData"].VR = "OB"
    ds.save_as(target, enforce_file_format=True)
    return target


@pytest.fixture
def gp(world):
    return actor_of(world.user("gp_ts1"))


def test_a_frame_over_the_render_budget_is_refused_at_ingest(app, world, gp, tmp_path):
    app.config["TELEMED_DICOM_MAX_FRAME_MEGAPIXELS"] = 16
    case = open_imaging_case(world)
    files = [
        ("wide.dcm", header_of_size(tmp_path / "wide.dcm", 20000, 20000)),
        ("fits.dcm", header_of_size(tmp_path / "fits.dcm", 4000, 4000)),
    ]
    outcomes = {o.filename: o for o in dicom.attach_files(gp, case.id, files)}
    refused = outcomes["wide.dcm"]
    assert refused.status == "refused"
    assert "20000×20000 pixels (381 MP) is over the 16 MP" in refused.reason
    assert "MP" not in (outcomes["fits.dcm"].reason or "")  # within the budget


def test_a_failed_render_is_remembered(app, world, gp, tmp_path):
    case = open_imaging_case(world)
    [outcome] = dicom.attach_files(gp, case.id, [("bad.dcm", broken_jpeg(tmp_path / "bad.dcm"))])
    assert outcome.status == "stored", outcome.reason
    db.session.commit()
    [instance] = dicom.instances_of(case.id)

    def render():
        return dicom.rendered_frame(
            instance, frame=0, media_type="image/png", window=None, quality=90, viewport=None
        )

    with pytest.raises(Conflict) as first:
        render()
    # Were the worker asked again, it would now fail differently: the file is gone.
    dicom.store().path_of(instance.sha256).unlink()
    started = time.monotonic()
    with pytest.raises(Conflict) as again:
        render()
    assert time.monotonic() - started < 0.05  # no worker was asked
    assert again.value.message == first.value.message
    assert again.value.field == "frame"


def test_renders_per_user_are_bounded(app):
    app.config["TELEMED_DICOM_RENDERS_PER_USER"] = 2
    with dicom.render_slot(7), dicom.render_slot(7):
        with pytest.raises(TooManyRequests) as refused, dicom.render_slot(7):
            pass
        assert refused.value.retry_after >= 1
        with dicom.render_slot(8):  # another user renders meanwhile
            pass
    with dicom.render_slot(7):  # slots come back
        pass


def test_no_decompressed_copy_beyond_the_bound(app, world, gp, client):
    case = open_imaging_case(world)
    dicom.attach_files(gp, case.id, [("rle.dcm", dicom_files.sample("emri_small_RLE.dcm"))])
    db.session.commit()
    [instance] = dicom.instances_of(case.id)
    app.config["TELEMED_DICOM_MAX_TRANSCODE_MB"] = 0
    with pytest.raises(Conflict) as refused:
        dicom.explicit_little_copy(instance)
    assert "transfer-syntax=*" in refused.value.message
    assert not list((dicom.store().area("transcoded")).glob("*.dcm"))
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))
    url = (
        f"/cases/{case.id}/dicomweb/studies/{instance.study_uid}/series/{instance.series_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )
    answer = client.get(
        url, headers={**headers, "Accept": 'multipart/related; type="application/dicom"'}
    )
    assert answer.status_code == 409 and "transfer-syntax=*" in answer.get_data(as_text=True)
    app.config["TELEMED_DICOM_MAX_TRANSCODE_MB"] = 256
    assert dicom.explicit_little_copy(instance).exists()
