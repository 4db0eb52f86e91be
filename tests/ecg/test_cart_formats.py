"""What carts export: GE MUSE, Philips SierraECG (XLI, UTF-16), SCP-ECG and PTB-style
WFDB records, read from this project's synthetic files and from the real files in
``shared/samples/ecg``, each checked against an independent decoding; and the paper
shows every lead within 0.1 mm of the decoded signal."""

from __future__ import annotations

import base64
import re
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import sierraecg

from telemed.ecg import EcgFileError, read_ecg, render_ecg_svg
from tests.ecg.samples import SYNTHETIC, shared_samples
from tests.ecg.synthetic import beat_train

SVG = "{http://www.w3.org/2000/svg}"
EIGHT = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
TWELVE = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def test_synthetic_muse_with_doctype_is_read_with_the_12sl_report():
    signal = read_ecg([SYNTHETIC / "muse.xml"])
    samples, _peaks = beat_train()
    assert signal.source_format == "ge_muse" and signal.sampling_rate == 500
    assert list(signal.leads) == TWELVE
    assert signal.derived_leads == ("III", "aVR", "aVL", "aVF")
    for row, name in enumerate(EIGHT):
        np.testing.assert_allclose(signal.lead(name), samples[row] * 4.88, rtol=1e-6)
    assert signal.acquisition == {
        "stored_units": "µV", "high_pass_hz": 0.05, "low_pass_hz": 150.0, "mains_filter_hz": 50.0,
    }  # fmt: skip
    assert signal.device.source == "GE MUSE (12SL)"
    assert signal.device.values["pr_ms"] == 160 and signal.device.values["p_ms"] == 100
    assert signal.device.values["qtc_bazett_ms"] == 446
    assert signal.device.statements == ("Normal sinus rhythm", "Normal ECG")
    assert signal.patient.id == "SYN-1"


def test_synthetic_philips_103_utf16_uncompressed():
    signal = read_ecg([SYNTHETIC / "philips_103.xml"])
    samples, _peaks = beat_train(leads=12, seconds=4)
    assert signal.source_format == "philips_sierra" and list(signal.leads) == TWELVE
    for row, name in enumerate(TWELVE):
        np.testing.assert_allclose(signal.lead(name), samples[row] * 5.0)
    assert signal.derived_leads == ()  # Philips stores all twelve
    assert signal.device.values["qrs_ms"] == 96
    assert signal.device.statements == ("SINUS RHYTHM",)


def test_ptb_style_record_with_two_signal_files():
    files = [SYNTHETIC / "ptb01.hea", SYNTHETIC / "ptb01.dat", SYNTHETIC / "ptb01.xyz"]
    signal = read_ecg(files)
    samples, _peaks = beat_train(leads=15)
    assert list(signal.leads) == [*TWELVE, "vx", "vy", "vz"]
    assert signal.warnings == ()  # the checksums in the header match
    assert signal.acquisition == {
        "stored_units": "2000 adu/mV",
        "compression": "WFDB format 16",
        "signal_files": "ptb01.dat, ptb01.xyz",
    }
    for row, name in enumerate([*TWELVE, "vx", "vy", "vz"]):
        np.testing.assert_allclose(signal.lead(name), samples[row] * 0.5)  # 2000 adu/mV
    with pytest.raises(EcgFileError) as caught:
        read_ecg(files[:2])
    assert caught.value.filename == "ptb01.xyz" and "was not sent" in caught.value.reason


def test_synthetic_scp_with_reference_beat_and_statements():
    signal = read_ecg([SYNTHETIC / "cart.scp"])
    samples, _peaks = beat_train()
    for row, name in enumerate(EIGHT):
        np.testing.assert_array_equal(signal.lead(name), samples[row].astype(np.float32))
    assert signal.device.values["qt_ms"] == 400 and signal.device.statements == ("Sinus rhythm",)


# ----- the real files in shared/samples/ecg ---------------------------------------------


def muse_leads(path) -> dict[str, np.ndarray]:
    """The Rhythm waveform's leads by regular expressions and base64, not by XML parsing."""
    text = path.read_text(encoding="latin-1")
    rhythm = text[text.index("<WaveformType>Rhythm") :]
    leads = {}
    for block in re.findall(r"<LeadData>(.*?)</LeadData>", rhythm, re.S):
        name = re.search(r"<LeadID>(\w+)</LeadID>", block).group(1)
        per_bit = float(re.search(r"<LeadAmplitudeUnitsPerBit>([\d.]+)<", block).group(1))
        data = re.search(r"<WaveFormData>(.*?)</WaveFormData>", block, re.S).group(1)
        leads[name] = np.frombuffer(base64.b64decode("".join(data.split())), "<i2") * per_bit
    return leads


@pytest.mark.parametrize(
    ("name", "device"),
    [
        ("braveheart_example3.xml", {"pr_ms": 164, "qrs_ms": 106, "qt_ms": 436, "p_axis_deg": 44}),
        ("braveheart_example4.xml", {"pr_ms": 209, "qrs_ms": 128, "qt_ms": 459, "t_axis_deg": 83}),
    ],
)
def test_real_ge_muse_exports(name, device):
    path = shared_samples() / "ge_muse_xml" / name
    signal = read_ecg([path])
    assert list(signal.leads) == TWELVE and signal.sampling_rate == 500
    assert signal.duration_s == 10.0
    for lead, values in muse_leads(path).items():
        np.testing.assert_allclose(signal.lead(lead), values, rtol=1e-6)
    lead_i, lead_ii = signal.lead("I"), signal.lead("II")
    np.testing.assert_allclose(signal.lead("aVF"), lead_ii - lead_i / 2, atol=1e-3)
    assert device.items() <= signal.device.values.items()


def test_real_philips_xli_utf16_export():
    path = shared_samples() / "philips_sierra_xml" / "ad4d3d80-d165_1-04_orig.xml"
    assert path.read_bytes()[:2] == b"\xff\xfe"  # UTF-16 LE
    signal = read_ecg([path])
    reference = sierraecg.read_file(str(path))  # the library's own whole-file reading
    assert list(signal.leads) == TWELVE and signal.sample_count == 5500
    for lead in reference.leads:
        np.testing.assert_allclose(signal.lead(lead.label), lead.samples.astype(float) * 5)
    assert signal.acquisition["compression"] == "XLI"
    values = signal.device.values
    assert (values["pr_ms"], values["qrs_ms"], values["qt_ms"]) == (144, 102, 564)
    assert "p_ms" not in values  # the file's P duration of 508 ms is a placeholder
    assert signal.device.statements[0] == "SINUS BRADYCARDIA — V-rate<60"


def scp_raw_leads(path) -> tuple[int, float, list[np.ndarray]]:
    """Section 6 of an uncompressed SCP file by offsets alone: (leads, µV/unit, data)."""
    data = path.read_bytes()
    pointers = {}
    for at in range(22, 22 + 12 * 10, 10):
        number, size, index = struct.unpack_from("<HII", data, at)
        pointers[number] = (index - 1, size)
    start, _size = pointers[6]
    leads = data[pointers[3][0] + 16]
    avm, _interval = struct.unpack_from("<HH", data, start + 16)
    sizes = struct.unpack_from(f"<{leads}H", data, start + 22)
    out, at = [], start + 22 + 2 * leads
    for size in sizes:
        out.append(np.frombuffer(data[at : at + size], "<i2").astype(np.float64) * avm / 1000)
        at += size
    return leads, avm / 1000, out


@pytest.mark.parametrize(
    ("name", "rate", "stored", "warning"),
    [
        ("demo.scp", 1000, ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], None),
        (
            "0000050.ECG.scp",
            800,
            TWELVE,
            "section 3 declares 37855 samples per lead but section 6 holds 32767",
        ),
    ],
)
def test_real_scp_files(name, rate, stored, warning):
    path = shared_samples() / "scp_ecg" / name
    signal = read_ecg([path])
    count, _unit, raw = scp_raw_leads(path)
    assert count == len(stored) and signal.sampling_rate == rate
    assert list(signal.leads) == TWELVE
    for lead, values in zip(stored, raw, strict=True):
        np.testing.assert_allclose(signal.lead(lead), values[: signal.sample_count], rtol=1e-6)
    if warning:
        assert any(warning in w for w in signal.warnings)
        # the Contec cart's chest leads hold nothing, and the reader says so
        assert "lead V1 holds only zeros (not recorded)" in signal.warnings
    else:
        assert signal.warnings == ()


def every_shared_recording():
    base = shared_samples()
    yield [base / "wfdb" / "100.hea", base / "wfdb" / "100.dat"]
    for folder in ("hl7_aecg", "ge_muse_xml", "philips_sierra_xml", "scp_ecg"):
        for path in sorted((base / folder).iterdir()):
            yield [path]


def test_every_shared_file_is_read_and_its_paper_is_exact():
    """Each strip's every drawn point within 0.1 mm of the decoded sample (25 mm/s,
    10 mm/mV), and the path's scale is exactly that speed and gain."""
    seen = 0
    for files in every_shared_recording():
        signal = read_ecg(files)
        root = ET.fromstring(render_ecg_svg(signal))  # noqa: S314  (our own output)
        strips = root.find(f"{SVG}g[@class='ecg-traces']").findall(f"{SVG}path")
        drawn = {p.get("data-lead") for p in strips}
        assert drawn == set(signal.leads if len(signal.leads) < 12 else TWELVE), files
        for strip in strips:
            start, _end = map(int, strip.get("data-samples").split(":"))
            sx, sy = re.search(r"scale\((\S+) (\S+)\)", strip.get("transform")).groups()
            assert float(sx) == pytest.approx(25 / signal.sampling_rate)
            assert float(sy) == pytest.approx(0.1)
            numbers = [int(v) for v in re.findall(r"-?\d+", strip.get("d"))]
            points = np.cumsum(np.array(numbers).reshape(-1, 2), axis=0)
            values = signal.lead(strip.get("data-lead")).astype(np.float64)
            window = values[start : int(strip.get("data-samples").split(":")[1])]
            expected_mm = -(values[start + points[:, 0]] - np.median(window)) / 1000 * 10
            assert np.abs(points[:, 1] * 0.1 - expected_mm).max() <= 0.1, files
        seen += 1
    assert seen == 8


def test_a_damaged_philips_file_is_refused_naming_the_format(tmp_path):
    source = shared_samples() / "philips_sierra_xml" / "ad4d3d80-d165_1-04_orig.xml"
    text = source.read_text(encoding="utf-16")
    start = text.index("<parsedwaveforms")
    body = text.index(">", start) + 1
    damaged = text[:body] + "AAAA" + text[body + 400 :]
    path = tmp_path / "philips.xml"
    path.write_text(damaged, encoding="utf-16")
    with pytest.raises(EcgFileError) as caught:
        read_ecg([path])
    assert caught.value.reason.startswith("Philips XML:")

    newer = tmp_path / "philips2.xml"
    newer.write_text(text.replace(">1.04<", ">2.00<"), encoding="utf-16")
    with pytest.raises(EcgFileError) as caught:
        read_ecg([newer])
    assert "PhilipsECG 2.00 is not a version this service reads" in caught.value.reason


def test_muse_without_a_rhythm_waveform_is_refused(tmp_path):
    text = (SYNTHETIC / "muse.xml").read_text(encoding="latin-1")
    path = tmp_path / "median_only.xml"
    path.write_text(text.replace("<WaveformType>Rhythm", "<WaveformType>Other"), "latin-1")
    with pytest.raises(EcgFileError) as caught:
        read_ecg([path])
    assert caught.value.reason.startswith("GE MUSE XML: no Rhythm waveform")


def test_dicom_waveform_states_its_filters_and_the_carts_values():
    from tests.ecg.samples import DICOM_WAVEFORM

    signal = read_ecg([DICOM_WAVEFORM])
    assert signal.acquisition == {
        "stored_units": "16-bit SS", "high_pass_hz": 0.05, "low_pass_hz": 300.0,
    }  # fmt: skip
    # and the cart's values and statements from its Waveform Annotation Sequence
    assert signal.device.source == "DICOM waveform annotations"
    assert signal.device.values == {
        "heart_rate_bpm": 61,
        "rr_ms": 982,
        "pr_ms": 161,
        "qrs_ms": 75,
        "qt_ms": 368,
        "qtc_ms": 370,
        "p_axis_deg": 74,
        "qrs_axis_deg": 52,
        "t_axis_deg": 57,
    }  # fmt: skip  (a PP interval of 0 is left out: not plausible)
    assert signal.device.statements == ("RITMO SINUSALE", "ECG NORMALE")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("<WaveFormData>", "<WaveFormData>@@"), "GE MUSE XML: lead I is not valid Base64"),
        (("MICROVOLTS", "FURLONGS"), "GE MUSE XML: lead I has unit FURLONGS"),
        (
            ("500</SampleBase><SampleExponent>", "5</SampleBase><SampleExponent>"),
            "sampling rate 5.0 Hz is outside",
        ),
        (
            ('SYSTEM "restecg.dtd">', '[<!ENTITY x "y">]>'),
            "XML entity declarations are not accepted",
        ),
    ],
)  # fmt: skip
def test_damaged_muse_files_are_refused_saying_what_is_wrong(tmp_path, change, reason):
    text = (SYNTHETIC / "muse.xml").read_text(encoding="latin-1")
    assert change[0] in text
    path = tmp_path / "muse.xml"
    path.write_text(text.replace(change[0], change[1], 1), encoding="latin-1")
    with pytest.raises(EcgFileError) as caught:
        read_ecg([path])
    assert reason in caught.value.reason and caught.value.filename == "muse.xml"
    assert str(tmp_path) not in caught.value.message
