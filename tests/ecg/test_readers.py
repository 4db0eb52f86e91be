"""Each accepted format reads to the right leads, rate, length and microvolt scale,
checked against what the files say when read another way."""

import re
import shutil

import numpy as np
import pydicom
import pytest

from telemed.ecg import EcgFileError, detect_ecg_format, read_ecg
from tests.ecg.samples import (
    AECG_FULL,
    AECG_MINIMUM,
    DICOM_WAVEFORM,
    WFDB_ANNOTATIONS,
    WFDB_DATA,
    WFDB_HEADER,
    wfdb_header_fields,
)

TWELVE = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def test_wfdb_format_212_record_in_microvolts():
    signal = read_ecg([WFDB_HEADER, WFDB_DATA, WFDB_ANNOTATIONS])
    assert signal.source_format == "wfdb"
    assert signal.leads == ("II", "V5")
    assert signal.source_leads == ("MLII", "V5")
    assert signal.sampling_rate == 360.0
    assert signal.sample_count == 650000
    assert signal.duration_s == pytest.approx(650000 / 360)
    assert signal.warnings == ()

    # Decode the first frames by hand: 212 packs two 12-bit samples into 3 bytes.
    raw = WFDB_DATA.read_bytes()
    fields = wfdb_header_fields()
    for column, line in enumerate(fields):
        gain, zero, first_value = float(line[2]), int(line[4]), int(line[5])
        assert signal.samples[column, 0] == (first_value - zero) * 1000 / gain
    for frame in (0, 1, 12345, 649999):
        b0, b1, b2 = raw[frame * 3 : frame * 3 + 3]
        adu = [b0 | ((b1 & 0x0F) << 8), b2 | ((b1 & 0xF0) << 4)]
        adu = [v - 4096 if v > 2047 else v for v in adu]
        for column, line in enumerate(fields):
            expected = (adu[column] - int(line[4])) * 1000 / float(line[2])
            assert signal.samples[column, frame] == expected


def test_wfdb_samples_sum_to_the_header_checksums():
    signal = read_ecg([WFDB_HEADER, WFDB_DATA])
    for column, line in enumerate(wfdb_header_fields()):
        gain, zero, checksum = float(line[2]), int(line[4]), int(line[6])
        adu = np.rint(signal.samples[column] * gain / 1000).astype(np.int64) + zero
        assert ((int(adu.sum()) + 32768) % 65536) - 32768 == checksum


def test_wfdb_data_found_by_uploaded_name(tmp_path):
    stored_header = tmp_path / "blob-1"
    stored_data = tmp_path / "blob-2"
    shutil.copyfile(WFDB_HEADER, stored_header)
    shutil.copyfile(WFDB_DATA, stored_data)
    signal = read_ecg([("100.hea", stored_header), ("100.dat", stored_data)])
    assert signal.sample_count == 650000


def _digits_of(xml: str, code: str) -> list[int]:
    """The first <digits> after a lead code, by plain text search."""
    start = xml.index(f'code="{code}"')
    match = re.search(r"<digits>([^<]*)</digits>", xml[start:])
    return [int(v) for v in match.group(1).split()]


def test_aecg_twelve_leads_at_scale_2_5_microvolts():
    signal = read_ecg([AECG_FULL])
    xml = AECG_FULL.read_text()
    assert signal.source_format == "hl7_aecg"
    assert signal.leads == TWELVE
    assert signal.derived_leads == ()
    assert signal.sampling_rate == 500.0  # increment 0.002 s
    assert signal.sample_count == 5000
    assert signal.duration_s == 10.0
    for lead, code in (
        ("I", "MDC_ECG_LEAD_I"),
        ("V3", "MDC_ECG_LEAD_V3"),
        ("aVF", "MDC_ECG_LEAD_AVF"),
    ):
        digits = np.array(_digits_of(xml, code), dtype=np.float64)
        assert len(digits) == 5000
        assert np.array_equal(signal.lead(lead), (digits * 2.5).astype(np.float32))
    assert signal.patient.id == "subject1"
    assert signal.patient.name == "Clark"
    assert signal.patient.sex == "M"
    assert signal.patient.birth_date == "19530508"


def test_aecg_stored_limb_leads_obey_einthoven():
    signal = read_ecg([AECG_FULL])
    assert np.array_equal(signal.lead("III"), signal.lead("II") - signal.lead("I"))


def test_minimal_aecg_single_lead():
    signal = read_ecg([AECG_MINIMUM])
    assert signal.leads == ("II",)
    assert signal.sample_count == 13
    expected = np.array([-2, -2, -2, -2, -3, -4, -3, -5, -5, -4, -6, -9, -9]) * 2.5
    assert np.array_equal(signal.lead("II"), expected.astype(np.float32))
    assert signal.patient.id == "SBJ-123"


def test_dicom_waveform_rhythm_group_in_microvolts():
    signal = read_ecg([DICOM_WAVEFORM])
    ds = pydicom.dcmread(DICOM_WAVEFORM)
    group = ds.WaveformSequence[0]
    assert group.MultiplexGroupLabel == "RHYTHM"
    raw = np.frombuffer(group.WaveformData, dtype="<i2").reshape(-1, 12)
    sensitivity = float(group.ChannelDefinitionSequence[0].ChannelSensitivity)
    assert sensitivity == 1.25

    assert signal.source_format == "dicom"
    assert signal.leads == TWELVE
    assert signal.sampling_rate == 1000.0
    assert signal.sample_count == 10000
    assert np.array_equal(signal.lead("I"), raw[:, 0] * np.float32(1.25))
    assert np.array_equal(signal.lead("V6"), raw[:, 11] * np.float32(1.25))
    assert signal.patient.id == "642341"
    assert signal.patient.name == "Anonymous"


def _write_csv(path, header, rows, preamble=("# sampling_rate=500",)):
    lines = [*preamble, ",".join(header), *(",".join(str(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_with_rate_comment_and_lead_header(tmp_path):
    source = read_ecg([AECG_FULL])
    rows = np.column_stack([source.lead("I"), source.lead("II"), source.lead("V1")])
    path = _write_csv(tmp_path / "ecg.csv", ["I", "II", "V1"], rows.tolist())
    signal = read_ecg([path])
    assert signal.source_format == "csv"
    assert signal.sampling_rate == 500.0
    assert signal.sample_count == 5000
    assert signal.leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V1")
    assert signal.derived_leads == ("III", "aVR", "aVL", "aVF")
    assert np.array_equal(signal.lead("V1"), source.lead("V1"))
    # III derived from I and II equals the III the aECG stored, sample for sample.
    assert np.array_equal(signal.lead("III"), source.lead("III"))
    assert np.array_equal(signal.lead("III"), signal.lead("II") - signal.lead("I"))


def test_csv_in_millivolts_with_time_column_and_rate_parameter(tmp_path):
    path = _write_csv(
        tmp_path / "mv.csv",
        ["time", "Lead II", "V2"],
        [[0, 0.5, -0.25], [0.004, 1.0, 0.125], [0.008, -1.5, 2]],
        preamble=("# units=mV",),
    )
    signal = read_ecg([path], sampling_rate=250)
    assert signal.leads == ("II", "V2")
    assert signal.sampling_rate == 250.0
    assert signal.lead("II").tolist() == [500.0, 1000.0, -1500.0]
    assert signal.lead("V2").tolist() == [-250.0, 125.0, 2000.0]


def test_csv_rate_in_file_and_parameter_must_agree(tmp_path):
    path = _write_csv(tmp_path / "a.csv", ["II"], [[1], [2]])
    assert read_ecg([path], sampling_rate=500).sampling_rate == 500.0
    with pytest.raises(EcgFileError, match="500 Hz but 250 Hz"):
        read_ecg([path], sampling_rate=250)


def test_csv_patient_comments(tmp_path):
    path = _write_csv(
        tmp_path / "p.csv",
        ["II"],
        [[1], [2]],
        preamble=("# sampling_rate=500", "# patient_id=P-77", "# patient_name=Wang Fang"),
    )
    patient = read_ecg([path]).patient
    assert (patient.id, patient.name) == ("P-77", "Wang Fang")


def test_format_detection_by_content():
    assert detect_ecg_format("upload.bin", DICOM_WAVEFORM) == "dicom"
    assert detect_ecg_format("upload.bin", AECG_FULL) == "hl7_aecg"
    assert detect_ecg_format("100.hea", WFDB_HEADER) == "wfdb"
    assert detect_ecg_format("100.dat", WFDB_DATA) is None


def test_summary_is_plain_data():
    summary = read_ecg([AECG_FULL]).summary()
    assert summary["leads"][:3] == ["I", "II", "III"]
    assert summary["sampling_rate"] == 500.0
    assert summary["duration_s"] == 10.0
    assert summary["patient"]["id"] == "subject1"
