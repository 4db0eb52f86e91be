"""Every bad ECG file is refused with a typed error naming the file and the reason,
before it can take memory, and nothing is written."""

import os
import shutil
import socket
import tracemalloc

import pydicom
import pytest

from telemed.ecg import EcgFileError, EcgLimits, read_ecg
from telemed.errors import InvalidInput
from tests.ecg.samples import AECG_MINIMUM, DICOM_WAVEFORM, WFDB_DATA, WFDB_HEADER

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<AnnotatedECG xmlns="urn:hl7-org:v3"><id root="&lol9;"/></AnnotatedECG>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE AnnotatedECG [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<AnnotatedECG xmlns="urn:hl7-org:v3"><id root="&secret;"/></AnnotatedECG>
"""

EXTERNAL_PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE AnnotatedECG [ <!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote; ]>
<AnnotatedECG xmlns="urn:hl7-org:v3"/>
"""


def refused(files, **kwargs) -> EcgFileError:
    with pytest.raises(EcgFileError) as caught:
        read_ecg(files, **kwargs)
    error = caught.value
    assert isinstance(error, InvalidInput) and error.status == 422
    assert error.message.startswith(f"{error.filename}: ")
    assert error.to_dict()["detail"] == {"filename": error.filename, "reason": error.reason}
    return error


@pytest.fixture
def snapshot(tmp_path):
    """Names of every file under tmp_path, to show a refusal writes nothing."""

    def take():
        return sorted(str(p) for p in tmp_path.rglob("*"))

    return take


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (BILLION_LAUGHS, "XML entity declarations are not accepted"),
        (EXTERNAL_ENTITY, "XML entity declarations are not accepted"),
        (EXTERNAL_PARAMETER_ENTITY, "XML entity declarations are not accepted"),
        ("<AnnotatedECG xmlns='urn:hl7-org:v3'><unclosed></AnnotatedECG>", "not well-formed"),
        (
            "<html><body/></html>",
            "an XML document <html> is not an ECG format this service reads",
        ),
    ],
)
def test_unsafe_or_wrong_xml_refused(tmp_path, snapshot, document, reason):
    path = tmp_path / "evil.xml"
    path.write_text(document)
    before = snapshot()
    error = refused([("evil.xml", path)])
    assert error.filename == "evil.xml"
    assert reason in error.reason
    assert snapshot() == before


def test_doctype_naming_an_external_dtd_is_read_without_fetching_it(tmp_path):
    """A cart's DOCTYPE (GE MUSE names restecg.dtd) is accepted; what it points to is
    never fetched: a listening socket sees no connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    path = tmp_path / "doctype.xml"
    doctype = f'<!DOCTYPE AnnotatedECG SYSTEM "http://127.0.0.1:{port}/aecg.dtd">\n'
    path.write_text(doctype + AECG_MINIMUM.read_text())
    try:
        signal = read_ecg([path])
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    assert signal.leads[0] == "II" and signal.source_format == "hl7_aecg"


def test_aecg_with_text_among_digits_refused(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(AECG_MINIMUM.read_text().replace("-4 -6", "-4 x6"))
    error = refused([path])
    assert "MDC_ECG_LEAD_II" in error.reason and "not a number" in error.reason


def test_aecg_over_the_xml_limit_refused_before_parsing(tmp_path):
    error = refused([AECG_MINIMUM], limits=EcgLimits(max_xml_bytes=1000))
    assert "over the limit of 1000 bytes" in error.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "# sampling_rate=500\nI,II\n1,2\n3\n5,6\n",
            "CSV line 4 has 1 values but the header names 2",
        ),
        ("# sampling_rate=500\nI,II\n1,2\n3,4,5\n", "CSV line 4 has 3 values"),
        (
            "# sampling_rate=500\nI,II\n1,2\n3,abc\n",
            "CSV line 4, column 2 (II): 'abc' is not a number",
        ),
        ("# sampling_rate=500\nI,II\n1,2\n3,\n", "CSV line 4, column 2 (II): empty value"),
        ("# sampling_rate=500\nI,II\n1,inf\n", "CSV line 3, column 2 (II): 'inf' is not a number"),
        ("I,II\n1,2\n", "no sampling rate"),
        ("# sampling_rate=fast\nI,II\n1,2\n", "sampling_rate 'fast' is not a number"),
        ("# sampling_rate=5\nI,II\n1,2\n", "sampling rate 5.0 Hz is outside"),
        ("# sampling_rate=500\n1,2\n3,4\n", "the first row must name the leads"),
        ("# sampling_rate=500\n# units=furlongs\nI\n1\n", "units 'furlongs'"),
        ("# sampling_rate=500\nI,II\n", "no samples"),
    ],
)
def test_bad_csv_refused_with_line_and_column(tmp_path, snapshot, text, reason):
    path = tmp_path / "upload.csv"
    path.write_text(text)
    before = snapshot()
    error = refused([("ecg.csv", path)])
    assert error.filename == "ecg.csv"
    assert reason in error.reason
    assert snapshot() == before


def _record(tmp_path, header_text=None, data_bytes=None):
    header = tmp_path / "100.hea"
    header.write_text(header_text if header_text is not None else WFDB_HEADER.read_text())
    files = [header]
    if data_bytes is not None:
        data = tmp_path / "100.dat"
        data.write_bytes(data_bytes)
        files.append(data)
    return files


def test_wfdb_without_its_data_file_refused(tmp_path):
    error = refused(_record(tmp_path))
    assert error.filename == "100.dat"
    assert "was not sent" in error.reason


def test_wfdb_with_short_data_file_refused(tmp_path):
    error = refused(_record(tmp_path, data_bytes=WFDB_DATA.read_bytes()[:100_000]))
    assert error.filename == "100.dat"
    assert "holds 100000 bytes but the header declares 1950000" in error.reason


def test_wfdb_data_file_alone_refused(tmp_path):
    data = tmp_path / "100.dat"
    shutil.copyfile(WFDB_DATA, data)
    assert "needs its .hea header" in refused([data]).reason


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            "100 2 360 999999999999\n100.dat 212 200 11 1024 0 0 0 MLII\n"
            "100.dat 212 200 11 1024 0 0 0 V5\n",
            "values accepted",
        ),
        ("100 100000 360 10\n100.dat 16 200 16 0 0 0 0 I\n", "signal lines found"),
        ("100 2 360 10\n100.dat 212 200 11 1024 0 0 0 MLII\n", "2 signals declared but 1"),
        ("100 1 360000000 10\n100.dat 16 200 16 0 0 0 0 I\n", "outside"),
        ("100 1 360 10\n100.dat 8 200 8 0 0 0 0 I\n", "format 8 is not supported"),
        ("100/3 1 360 10\n", "multi-segment"),
        ("100 1 360 -5\n100.dat 16 200 16 0 0 0 0 I\n", "negative sample count"),
        ("100 x 360 10\n", "signal count 'x' is not a whole number"),
        ("# only a comment\n", "no record line"),
    ],
)
def test_wfdb_header_with_absurd_claims_refused_before_allocating(tmp_path, header, reason):
    files = _record(tmp_path, header_text=header, data_bytes=WFDB_DATA.read_bytes()[:3000])
    tracemalloc.start()
    try:
        error = refused(files)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reason in error.reason
    assert error.filename == "100.hea"
    assert peak < 5_000_000


def test_file_over_the_size_limit_refused_without_reading(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as stream:  # sparse: takes no disk, but claims 100 MB
        stream.truncate(100 * 1024 * 1024)
    tracemalloc.start()
    try:
        error = refused([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "over the limit" in error.reason
    assert peak < 1_000_000


def test_too_many_values_refused(tmp_path):
    limits = EcgLimits(max_values=100_000)
    error = refused([WFDB_HEADER, WFDB_DATA], limits=limits)
    assert "more than the 100000 values accepted" in error.reason


def test_not_dicom_refused(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_bytes(b"MZ\x90\x00" + os.urandom(2000))
    assert refused([path]).reason == "not a DICOM file"


def test_dicom_without_waveform_refused(tmp_path):
    ds = pydicom.dcmread(DICOM_WAVEFORM)
    del ds.WaveformSequence
    path = tmp_path / "image.dcm"
    ds.save_as(path)
    assert "holds no waveform" in refused([path]).reason


def test_dicom_waveform_shorter_than_declared_refused(tmp_path):
    ds = pydicom.dcmread(DICOM_WAVEFORM)
    ds.WaveformSequence[0].NumberOfWaveformSamples = 20000
    path = tmp_path / "short.dcm"
    ds.save_as(path)
    error = refused([path])
    assert "waveform data is 240000 bytes, shorter than the 480000 declared" in error.reason


def test_dicom_waveform_claiming_absurd_size_refused(tmp_path):
    ds = pydicom.dcmread(DICOM_WAVEFORM)
    ds.WaveformSequence[0].NumberOfWaveformSamples = 4_000_000_000
    path = tmp_path / "absurd.dcm"
    ds.save_as(path)
    assert "values accepted" in refused([path]).reason


def test_truncated_dicom_refused(tmp_path):
    path = tmp_path / "cut.dcm"
    path.write_bytes(DICOM_WAVEFORM.read_bytes()[:50_000])
    reason = refused([path]).reason
    assert "waveform" in reason or "DICOM" in reason


def test_unknown_file_and_several_recordings_refused(tmp_path):
    other = tmp_path / "notes.pdf"
    other.write_bytes(b"%PDF-1.4")
    assert "not a recognised ECG file" in refused([other]).reason
    assert "one ECG recording at a time" in refused([AECG_MINIMUM, DICOM_WAVEFORM]).reason
    assert refused([]).reason == "no file was sent"
