"""SCP-ECG: every encoding of EN 1064 the reader claims, round-tripped through an
independent writer, plus damaged files refused with what was wrong."""

from __future__ import annotations

import numpy as np
import pytest

from telemed.ecg import EcgFileError, read_ecg
from tests.ecg.scp_writer import ScpRecord, crc_ccitt, write_scp

RATE = 500
CODES = [1, 2, 3, 4, 5, 6, 7, 8]  # I, II, V1–V6: III and the augmented leads are derived


def beat_train(seconds: float = 4.0, rr: int = 400, seed: int = 1) -> tuple[np.ndarray, list]:
    """Eight leads of whole µV: a P, QRS and T every ``rr`` samples, plus small noise."""
    t = np.arange(int(seconds * RATE))
    rng = np.random.default_rng(seed)
    leads = np.zeros((len(CODES), len(t)))
    peaks = list(range(150, len(t) - 200, rr))
    for index in range(len(CODES)):
        gain = 0.5 + 0.15 * index
        for peak in peaks:
            leads[index] += 150 * gain * np.exp(-(((t - peak + 80) / 12.0) ** 2))
            leads[index] += 1200 * gain * np.exp(-(((t - peak) / 5.0) ** 2))
            leads[index] += 300 * gain * np.exp(-(((t - peak - 150) / 25.0) ** 2))
    leads += rng.integers(-3, 4, size=leads.shape)
    return np.rint(leads).astype(np.int64), peaks


def write(tmp_path, record: ScpRecord, name="rec.scp"):
    path = tmp_path / name
    path.write_bytes(write_scp(record))
    return path


@pytest.mark.parametrize(
    ("huffman", "difference"),
    [
        (None, 0),
        ("default", 0),
        ("default", 1),
        ("default", 2),
        ("custom", 0),
        ("custom", 1),
        ("custom", 2),
    ],
)
def test_huffman_tables_and_differences_decode_exactly(tmp_path, huffman, difference):
    samples, _peaks = beat_train()
    if huffman == "custom":
        samples[:, 300:340] = 5  # a run the second table codes in two bits
    path = write(tmp_path, ScpRecord(CODES, samples, huffman=huffman, difference=difference))
    signal = read_ecg([path])
    assert signal.source_format == "scp_ecg" and signal.sampling_rate == RATE
    assert signal.leads == ("I", "II", "III", "aVR", "aVL", "aVF", *[f"V{i}" for i in range(1, 7)])
    assert signal.derived_leads == ("III", "aVR", "aVL", "aVF")
    for row, name in enumerate(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]):
        np.testing.assert_array_equal(signal.lead(name), samples[row].astype(np.float32))
    np.testing.assert_allclose(signal.lead("III"), samples[1] - samples[0])


def test_reference_beat_subtraction_is_undone(tmp_path):
    samples, peaks = beat_train()
    fiducial = 60  # the R peak's place in the 160-sample reference beat
    reference = samples[:, peaks[1] - fiducial + 1 : peaks[1] - fiducial + 161]
    qrs = [(0, p - 40, p, p + 60) for p in peaks]
    record = ScpRecord(
        CODES, samples, difference=2, reference=reference, fiducial=fiducial, qrs=qrs,
        protected=[(p - 30, p + 50) for p in peaks],
    )  # fmt: skip
    signal = read_ecg([write(tmp_path, record)])
    np.testing.assert_array_equal(signal.lead("II"), samples[1].astype(np.float32))
    assert "reference beat subtracted" in signal.acquisition["compression"]


def test_decimated_residual_is_restored_outside_protected_zones(tmp_path):
    samples, peaks = beat_train()
    fiducial = 60
    reference = samples[:, peaks[1] - fiducial + 1 : peaks[1] - fiducial + 161]
    zones = [(p - 30, p + 50) for p in peaks]
    record = ScpRecord(
        CODES, samples, difference=1, reference=reference, fiducial=fiducial,
        qrs=[(0, p - 40, p, p + 60) for p in peaks], protected=zones, decimation=4,
    )  # fmt: skip
    signal = read_ecg([write(tmp_path, record)])
    assert signal.sampling_rate == RATE  # the full rate, not the decimated one
    assert signal.sample_count == samples.shape[1]
    lead = signal.lead("V3")
    original = samples[4].astype(np.float64)
    inside = np.zeros(samples.shape[1], dtype=bool)
    for start, end in zones:
        inside[start - 1 : end] = True
    np.testing.assert_array_equal(lead[inside], original[inside])
    # outside, the residual (noise and slow waves) is interpolated between kept samples
    assert np.abs(lead[~inside] - original[~inside]).max() < 40


def test_device_measurements_and_statements_from_sections_7_10_11(tmp_path):
    samples, _peaks = beat_train()
    record = ScpRecord(
        CODES,
        samples,
        global_values={
            "rr": 800, "p_on": 100, "p_off": 200, "qrs_on": 260, "qrs_off": 356,
            "t_off": 660, "p_axis": 45, "qrs_axis": -30, "t_axis": 29999,
        },
        statements=["Sinus rhythm", "Left axis deviation"],
    )  # fmt: skip
    device = read_ecg([write(tmp_path, record)]).device
    assert device.source == "SCP-ECG section 7"
    assert device.values == {
        "heart_rate_bpm": 75,
        "rr_ms": 800,
        "p_ms": 100,
        "pr_ms": 160,
        "qrs_ms": 96,
        "qt_ms": 400,
        "p_axis_deg": 45,
        "qrs_axis_deg": -30,
    }  # fmt: skip  (29999: T axis not measured, left out)
    assert device.statements == ("Sinus rhythm", "Left axis deviation")

    per_lead = [[100 + i, 150 + i, 90 + i, 390 + i] for i in range(8)]
    only_10 = ScpRecord(CODES, samples, per_lead=per_lead)
    device = read_ecg([write(tmp_path, only_10, "s10.scp")]).device
    assert device.source.startswith("SCP-ECG section 10")
    assert device.values == {"p_ms": 107, "pr_ms": 154, "qrs_ms": 97, "qt_ms": 397}


def test_patient_and_filters_from_section_1(tmp_path):
    samples, _peaks = beat_train(seconds=3)
    record = ScpRecord(CODES, samples, patient={"last": "Wang", "first": "Fang", "id": "TS-7"})
    signal = read_ecg([write(tmp_path, record)])
    assert signal.patient.name == "Wang Fang" and signal.patient.id == "TS-7"
    assert signal.acquisition["high_pass_hz"] == 0.05
    assert signal.acquisition["low_pass_hz"] == 150


def test_damaged_scp_files_are_refused_with_what_is_wrong(tmp_path):
    samples, _peaks = beat_train(seconds=3)
    good = write_scp(ScpRecord(CODES, samples))
    cases = {
        "crc.scp": (write_scp(ScpRecord(CODES, samples, crc_damage=True)), "CRC does not match"),
        "cut.scp": (good[: len(good) - 100], "it is damaged or cut"),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(EcgFileError) as caught:
            read_ecg([path])
        assert caught.value.filename == name
        assert reason in caught.value.reason and "SCP-ECG" in caught.value.reason
        assert str(tmp_path) not in caught.value.message


def test_huffman_data_ending_early_is_refused(tmp_path):
    samples, _peaks = beat_train(seconds=3)
    raw = write_scp(ScpRecord(CODES, samples))
    # section 3 claims 50 more samples per lead than the compressed data hold (CRCs fixed)
    pointer = 6 + 16 + 10 * 3
    start = int.from_bytes(raw[pointer + 6 : pointer + 10], "little") - 1
    size = int.from_bytes(raw[start + 4 : start + 8], "little")
    body = bytearray(raw[start : start + size])
    for lead in range(len(CODES)):
        at = 16 + 2 + 9 * lead + 4
        end = int.from_bytes(body[at : at + 4], "little")
        body[at : at + 4] = (end + 50).to_bytes(4, "little")
    body[0:2] = crc_ccitt(bytes(body[2:])).to_bytes(2, "little")
    raw = raw[:start] + bytes(body) + raw[start + size :]
    raw = crc_ccitt(raw[2:]).to_bytes(2, "little") + raw[2:]
    path = tmp_path / "short.scp"
    path.write_bytes(raw)
    with pytest.raises(EcgFileError) as caught:
        read_ecg([path])
    assert "compressed data end" in caught.value.reason


def test_an_independent_decoder_reads_the_writers_files_as_ours_does(tmp_path):
    """ecgdatakit (Apache-2.0) decodes SCP-ECG on its own: on the default and custom
    Huffman tables, differences and reference-beat subtraction it agrees with our reader
    sample for sample, so the writer and the reader do not share one misreading of the
    standard. (It refuses decimated data, and both real shared samples, which ours reads.)"""
    import warnings

    from ecgdatakit import FileParser

    samples, peaks = beat_train()
    fiducial = 60
    reference = samples[:, peaks[1] - fiducial + 1 : peaks[1] - fiducial + 161]
    records = {
        "default.scp": ScpRecord(CODES, samples, difference=2),
        "custom.scp": ScpRecord(CODES, samples, huffman="custom", difference=1),
        "reference.scp": ScpRecord(
            CODES, samples, difference=1, reference=reference, fiducial=fiducial,
            qrs=[(0, p - 40, p, p + 60) for p in peaks],
            protected=[(p - 30, p + 50) for p in peaks],
        ),
    }  # fmt: skip
    for name, record in records.items():
        path = write(tmp_path, record, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = FileParser.parse(path, units="uV")
        ours = read_ecg([path])
        assert [lead.label for lead in theirs.leads] == ["I", "II", *[f"V{i}" for i in range(1, 7)]]
        for lead in theirs.leads:
            np.testing.assert_allclose(ours.lead(lead.label), lead.samples, atol=1e-3)
