"""Machine measurements against independent references: the reference beat annotations
of MIT-BIH record 100 and the intervals the recording devices stored in the files."""

import numpy as np
import pydicom
import pytest

from telemed.ecg import MACHINE_MEASUREMENT_LABEL, measure, read_ecg
from telemed.ecg.signal import build_signal
from tests.ecg.samples import (
    AECG_FULL,
    AECG_MINIMUM,
    DICOM_WAVEFORM,
    WFDB_ANNOTATIONS,
    WFDB_DATA,
    WFDB_HEADER,
    mit_beat_samples,
)


@pytest.fixture(scope="module")
def record_100():
    return read_ecg([WFDB_HEADER, WFDB_DATA])


def test_record_100_annotations_hold_the_published_beat_count():
    beats = mit_beat_samples(WFDB_ANNOTATIONS)
    assert len(beats) == 2273  # N 2239, A 33, V 1 (the 2274th annotation is a rhythm mark)
    rate = 60 * (len(beats) - 1) / ((beats[-1] - beats[0]) / 360)
    assert rate == pytest.approx(75.6, abs=0.2)


@pytest.mark.parametrize("start_s", [0.0, 600.0, 1500.0])
def test_record_100_heart_rate_matches_the_reference_beats(record_100, start_s):
    result = measure(record_100, start_s=start_s, max_seconds=60)
    beats = np.array(mit_beat_samples(WFDB_ANNOTATIONS)) / 360.0
    inside = beats[(beats >= start_s) & (beats < start_s + 60)]
    reference_rr = np.diff(inside).mean() * 1000
    reference_rate = 60000 / reference_rr
    assert result.lead == "II"
    assert result.beats == pytest.approx(len(inside), abs=1)
    assert result.heart_rate_bpm == pytest.approx(reference_rate, abs=1.5)
    assert result.rr_ms == pytest.approx(reference_rr, abs=15)
    # and within the whole record's range of 2273 beats in 30 min
    assert 70 <= result.heart_rate_bpm <= 82


def test_dicom_waveform_agrees_with_the_device_measurements():
    ds = pydicom.dcmread(DICOM_WAVEFORM)
    device = {
        a.ConceptNameCodeSequence[0].CodeMeaning: float(a.NumericValue)
        for a in ds.WaveformAnnotationSequence
        if "NumericValue" in a and "ConceptNameCodeSequence" in a
    }
    result = measure(read_ecg([DICOM_WAVEFORM]))
    assert result.rr_ms == pytest.approx(device["RR Interval"], abs=15)
    assert result.heart_rate_bpm == pytest.approx(60000 / device["RR Interval"], abs=1.5)
    assert result.pr_ms == pytest.approx(device["PR Interval"], abs=15)
    assert result.qrs_ms == pytest.approx(device["QRS Duration"], abs=10)
    assert result.qt_ms == pytest.approx(device["QT Interval"], abs=15)
    assert result.quality == "good" and result.uncertain == ()
    assert result.qtc_bazett_ms == round(result.qt_ms / (result.rr_ms / 1000) ** 0.5)
    assert abs(result.qtc_fridericia_ms - result.qt_ms / (result.rr_ms / 1000) ** (1 / 3)) <= 1


def test_aecg_measurements_near_the_device_annotations():
    result = measure(read_ecg([AECG_FULL]))
    assert result.beats == 12
    assert 65 <= result.heart_rate_bpm <= 78
    assert result.pr_ms == pytest.approx(148, abs=10)  # device: PR 148, QRS 120, QT 420
    assert result.qrs_ms == pytest.approx(120, abs=10)
    assert result.qt_ms == pytest.approx(420, abs=20)
    assert result.qrs_axis_deg == pytest.approx(-61, abs=15)  # device: −61°, T 86°
    assert result.t_axis_deg == pytest.approx(86, abs=10)
    assert result.qtc_bazett_ms is not None and result.qtc_fridericia_ms is not None


def test_results_are_labelled_as_machine_measurements():
    result = measure(read_ecg([AECG_FULL]))
    assert result.is_machine_measurement is True
    assert result.label == MACHINE_MEASUREMENT_LABEL
    assert result.method.startswith("median beat of all leads")
    data = result.to_dict()
    assert data["label"] == MACHINE_MEASUREMENT_LABEL
    assert data["is_machine_measurement"] is True
    assert set(data) >= {"heart_rate_bpm", "rr_ms", "pr_ms", "qrs_ms", "qt_ms"}


def _none_measured(result):
    values = (result.heart_rate_bpm, result.rr_ms, result.pr_ms, result.qrs_ms, result.qt_ms)
    return all(v is None for v in values) and result.notes


def test_too_short_recording_measures_nothing_without_raising():
    result = measure(read_ecg([AECG_MINIMUM]))
    assert _none_measured(result)
    assert "too short" in result.notes[0]


@pytest.mark.parametrize(
    "values",
    [
        np.zeros(5000),
        np.random.default_rng(7).normal(0, 80, 5000),
        np.repeat([0.0, 1500.0], 2500),
        np.full(5000, 1e6),
    ],
    ids=["flat", "noise", "step", "saturated"],
)
def test_junk_signals_measure_nothing_without_raising(values):
    result = measure(build_signal([("II", values)], 500, "csv"))
    assert _none_measured(result)


def test_a_lead_that_is_missing_is_not_measured():
    result = measure(read_ecg([AECG_FULL]), lead="V9")
    assert _none_measured(result)


def test_values_that_differ_between_odd_and_even_beats_are_marked_uncertain():
    """T waves alternating 80 ms earlier and later: QT is unstable and says so; the QRS,
    the same in every beat, is not."""
    rate, rr = 500, 400
    t = np.arange(10 * rate)
    leads = []
    for gain in (1.0, 0.6, 0.8):
        values = np.zeros(len(t))
        for number, peak in enumerate(range(200, len(t) - 300, rr)):
            shift = 40 if number % 2 else -40
            values += 150 * gain * np.exp(-(((t - peak + 80) / 12.0) ** 2))
            values += 1200 * gain * np.exp(-(((t - peak) / 5.0) ** 2))
            values += 300 * gain * np.exp(-(((t - peak - 150 - shift) / 25.0) ** 2))
        leads.append(values)
    signal = build_signal(list(zip(["I", "II", "V5"], leads, strict=True)), rate, "csv")
    result = measure(signal)
    assert result.median_beats >= 6
    assert "qt_ms" in result.uncertain and "qrs_ms" not in result.uncertain
    assert result.to_dict()["uncertain"] == list(result.uncertain)


def test_ge_muse_export_axes_and_intervals_near_the_12sl():
    from tests.ecg.samples import shared_samples

    signal = read_ecg([shared_samples() / "ge_muse_xml" / "braveheart_example3.xml"])
    result = measure(signal)
    device = signal.device.values
    for key, tolerance in (("pr_ms", 10), ("qrs_ms", 10), ("qt_ms", 30), ("p_axis_deg", 10),
                           ("qrs_axis_deg", 10), ("t_axis_deg", 10)):  # fmt: skip
        assert getattr(result, key) == pytest.approx(device[key], abs=tolerance), key
