"""dicomweb-client's whole API against one case over real HTTP, for every transfer syntax
of the shared samples that the server stores (plus Implicit VR Little Endian and Explicit
VR Big Endian made from one of them): search, retrieve instance/series/study, frames,
rendered, metadata and bulk data, with pixels equal to pydicom's own decode."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from tests import dicom_files, factories
from tests.test_dicomweb_http import client_for, imaging_case  # noqa: F401 (fixture)

ELE = "1.2.840.10008.1.2.1"
NATIVE = {ELE, "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"}
# The transfer syntaxes of the shared samples (one file each), by file.
SAMPLES = {
    "MR2_UNCR.dcm": ELE,
    "emri_small.dcm": ELE,
    "emri_small_RLE.dcm": "1.2.840.10008.1.2.5",
    "JPEG-LL.dcm": "1.2.840.10008.1.2.4.70",
    "emri_small_jpeg_ls_lossless.dcm": "1.2.840.10008.1.2.4.80",
    "emri_small_jpeg_2k_lossless.dcm": "1.2.840.10008.1.2.4.90",
    "MR2_J2KI.dcm": "1.2.840.10008.1.2.4.91",
    "US1_J2KI.dcm": "1.2.840.10008.1.2.4.91",
    "RG3_J2KI.dcm": "1.2.840.10008.1.2.4.91",
    "liver_deflate.dcm": "1.2.840.10008.1.2.8.1",  # stored; no decoder here
}
FRAME_MEDIA = {
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
}


@dataclass
class Sent:
    name: str
    path: Path
    ds: pydicom.Dataset
    decodable: bool

    @property
    def uids(self) -> tuple[str, str, str]:
        return self.ds.StudyInstanceUID, self.ds.SeriesInstanceUID, self.ds.SOPInstanceUID

    @property
    def syntax(self) -> str:
        return str(self.ds.file_meta.TransferSyntaxUID)

    @property
    def frames(self) -> int:
        return int(self.ds.get("NumberOfFrames") or 1)


def renamed(source: Path, target: Path, study: str) -> Path:
    """The sample with its own series and instance UIDs in one study (several samples are
    one instance in several syntaxes); pixel data untouched."""
    ds = pydicom.dcmread(source)
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    # force_encoding: pydicom knows no encoding for Deflated Image Frame Compression.
    pydicom.dcmwrite(target, ds, implicit_vr=False, little_endian=True, force_encoding=True)
    return target


def implicit_and_big_endian(source: Path, folder: Path, study: str) -> list[Path]:
    """emri_small (Explicit VR Little Endian, 10 frames of 16 bits) written in the two
    syntaxes the web does not use, the pixel values unchanged."""
    base = pydicom.dcmread(source)
    pixels = base.pixel_array
    made = []
    for syntax, little in (("1.2.840.10008.1.2", True), ("1.2.840.10008.1.2.2", False)):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<" if little else ">")).tobytes()
        target = folder / f"emri_{syntax}.dcm"
        pydicom.dcmwrite(target, ds, implicit_vr=little, little_endian=little, force_encoding=True)
        made.append(target)
    return made


def native_frame(ds: pydicom.Dataset, index: int) -> bytes:
    """pydicom's decode of one frame, laid out as Explicit VR Little Endian pixel data."""
    pixels = pydicom.pixels.pixel_array(ds, index=index)
    size = int(ds.BitsAllocated) // 8
    kind = "i" if int(ds.get("PixelRepresentation", 0)) else "u"
    return np.ascontiguousarray(pixels).astype(f"<{kind}{size}").tobytes()


@pytest.fixture
def sent(world, imaging_case, live_http, tmp_path):  # noqa: F811
    study = generate_uid()
    paths = [
        renamed(dicom_files.sample(name), tmp_path / name, study) for name in SAMPLES
    ] + implicit_and_big_endian(dicom_files.sample("emri_small.dcm"), tmp_path, study)
    token = factories.token_for(world.user("gp_ts1"))
    web = client_for(live_http, imaging_case, token)
    root = f"{live_http.url}/cases/{imaging_case}/dicomweb"
    # pydicom cannot write a Deflated Image Frame Compression dataset for the client to
    # send: that file goes as its bytes.
    deflated = [p for p in paths if p.name == "liver_deflate.dcm"]
    answer = web.store_instances([pydicom.dcmread(p) for p in paths if p not in deflated])
    assert len(answer.ReferencedSOPSequence) == len(paths) - 1
    assert "FailedSOPSequence" not in answer
    boundary = "liver"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + deflated[0].read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    stow = requests.post(
        f"{root}/studies",
        data=body,
        headers={
            **factories.bearer(token),
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
        timeout=60,
    )
    assert stow.status_code == 200, stow.headers.get("Warning")
    files = []
    for path in paths:
        ds = pydicom.dcmread(path)
        decodable = ds.file_meta.TransferSyntaxUID != SAMPLES["liver_deflate.dcm"]
        files.append(Sent(path.name, path, ds, decodable))
    return web, files, token, root


def test_every_stored_syntax_through_the_whole_client_api(sent):
    web, files, token, root = sent
    study = files[0].ds.StudyInstanceUID
    assert {f.syntax for f in files} >= set(SAMPLES.values())

    found = web.search_for_instances(study)
    assert len(found) == len(files)
    for item in found:
        instance = pydicom.Dataset.from_json(item)
        assert instance.InstanceAvailability == "ONLINE"
        assert instance.BitsAllocated in (1, 8, 16)
    assert len(web.search_for_series(study)) == len(files)

    for sample in files:
        study_uid, series_uid, sop_uid = sample.uids
        original = sample.path.read_bytes()

        # As stored (transfer-syntax=*): the very bytes sent, but for the zeroed preamble.
        stored = web.retrieve_instance(*sample.uids)
        as_stored = requests.get(
            f"{root}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}",
            headers={**factories.bearer(token), "Accept": "application/dicom; transfer-syntax=*"},
            timeout=60,
        )
        if sample.syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2"):
            # Not used on the web (PS3.18): "any syntax" gives Explicit VR Little Endian.
            assert stored.file_meta.TransferSyntaxUID == ELE
        else:
            assert as_stored.content[128:] == original[128:], sample.name
            assert stored.file_meta.TransferSyntaxUID == sample.syntax

        # Explicit VR Little Endian: the same instance (every UID kept), decoded.
        if sample.decodable:
            plain = web.retrieve_instance(*sample.uids, media_types=(("application/dicom", ELE),))
            assert plain.file_meta.TransferSyntaxUID == ELE
            assert plain.SOPInstanceUID == sop_uid, sample.name
            assert plain.file_meta.MediaStorageSOPInstanceUID == sop_uid
            assert plain.SeriesInstanceUID == series_uid and plain.StudyInstanceUID == study_uid
            assert np.array_equal(plain.pixel_array, sample.ds.pixel_array), sample.name
        else:
            with pytest.raises(requests.HTTPError) as refused:
                web.retrieve_instance(*sample.uids, media_types=(("application/dicom", ELE),))
            assert refused.value.response.status_code == 406
            assert sop_uid in refused.value.response.json()["error"]["message"]

        # Frames: uncompressed (the default), single and as a list.
        wanted = sorted({1, sample.frames})
        if sample.decodable:
            frames = web.retrieve_instance_frames(*sample.uids, frame_numbers=wanted)
            assert frames == [native_frame(sample.ds, n - 1) for n in wanted], sample.name
            one = web.retrieve_instance_frames(
                *sample.uids,
                frame_numbers=[1],
                media_types=(("application/octet-stream", ELE),),
            )
            assert one == [native_frame(sample.ds, 0)]
        # ... and as stored.
        stored_frames = web.retrieve_instance_frames(
            *sample.uids,
            frame_numbers=wanted,
            media_types=(("application/octet-stream", "*"),),
        )
        if sample.syntax not in NATIVE:
            encapsulated = list(
                generate_frames(sample.ds.PixelData, number_of_frames=sample.frames)
            )
            assert stored_frames == [encapsulated[n - 1] for n in wanted], sample.name
            media = FRAME_MEDIA.get(sample.syntax)
            if media:
                compressed = web.retrieve_instance_frames(
                    *sample.uids, frame_numbers=wanted, media_types=((media, sample.syntax),)
                )
                assert compressed == [encapsulated[n - 1] for n in wanted]
        else:
            assert stored_frames == [native_frame(sample.ds, n - 1) for n in wanted]

        # Metadata, and the pixel data behind its BulkDataURI.
        metadata = web.retrieve_instance_metadata(*sample.uids)
        assert metadata["00080018"]["Value"] == [sop_uid]
        uri = metadata["7FE00010"]["BulkDataURI"]
        assert uri.endswith(f"/instances/{sop_uid}/bulkdata/7FE00010")
        # dicomweb-client sends its Host header without the port, so the server's
        # absolute URIs name port 80: put back the test server's.
        uri = root + uri.split("/dicomweb", 1)[1]
        if sample.decodable:
            bulk = web.retrieve_bulkdata(uri)
            assert b"".join(bulk) == b"".join(
                native_frame(sample.ds, n) for n in range(sample.frames)
            ), sample.name
        else:
            bulk = web.retrieve_bulkdata(uri, media_types=(("application/octet-stream", "*"),))
            assert len(bulk) == sample.frames

        # Rendered: the instance, a frame, the series.
        if sample.decodable:
            png = web.retrieve_instance_rendered(*sample.uids, media_types=("image/png",))
            image = Image.open(io.BytesIO(png))
            assert image.size == (int(sample.ds.Columns), int(sample.ds.Rows))
            last = web.retrieve_instance_frames_rendered(
                *sample.uids, frame_numbers=[sample.frames], media_types=("image/jpeg",)
            )
            assert last[:2] == b"\xff\xd8"
            series_jpeg = web.retrieve_series_rendered(
                study_uid, series_uid, media_types=("image/jpeg",)
            )
            assert series_jpeg[:2] == b"\xff\xd8"

    series_metadata = web.retrieve_series_metadata(study, files[0].ds.SeriesInstanceUID)
    assert len(series_metadata) == 1
    assert len(web.retrieve_study_metadata(study)) == len(files)
    everything = web.retrieve_study(study, media_types=(("application/dicom", "*"),))
    assert sorted(ds.SOPInstanceUID for ds in everything) == sorted(f.uids[2] for f in files)
    one_series = web.retrieve_series(study, files[1].ds.SeriesInstanceUID)
    assert [ds.SOPInstanceUID for ds in one_series] == [files[1].uids[2]]
    study_png = requests.get(
        f"{root}/studies/{study}/rendered",
        headers={**factories.bearer(token), "Accept": "image/png"},
        timeout=60,
    )
    assert study_png.status_code == 200 and study_png.content[:4] == b"\x89PNG"
