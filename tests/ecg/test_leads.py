"""Lead names in standard terms and the limb leads that follow from two others."""

import numpy as np
import pytest

from telemed.ecg.leads import canonical_lead_name, derive_limb_leads
from telemed.ecg.signal import build_signal


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("II", "II"),
        ("Lead II", "II"),
        ("MLII", "II"),
        ("DII", "II"),
        ("MDC_ECG_LEAD_II", "II"),
        ("Lead I (Einthoven)", "I"),
        ("MDC_ECG_LEAD_AVR", "aVR"),
        ("avl", "aVL"),
        ("Lead aVF (Goldberger)", "aVF"),
        ("v1", "V1"),
        ("MDC_ECG_LEAD_V6", "V6"),
        ("Resp", "Resp"),
    ],
)
def test_lead_labels_map_to_standard_names(label, name):
    assert canonical_lead_name(label) == name


def test_einthoven_and_goldberger_from_i_and_ii():
    lead_i = np.array([100, -50, 0, 37], dtype=np.float32)
    lead_ii = np.array([300, 20, -10, 5], dtype=np.float32)
    derived = derive_limb_leads({"I": lead_i, "II": lead_ii})
    assert set(derived) == {"III", "aVR", "aVL", "aVF"}
    assert np.array_equal(derived["III"], lead_ii - lead_i)
    assert np.array_equal(derived["aVR"], -(lead_i + lead_ii) / 2)
    assert np.array_equal(derived["aVL"], lead_i - lead_ii / 2)
    assert np.array_equal(derived["aVF"], lead_ii - lead_i / 2)


def test_lead_i_follows_from_ii_and_iii():
    lead_ii = np.array([300, 20], dtype=np.float32)
    lead_iii = np.array([200, 70], dtype=np.float32)
    derived = derive_limb_leads({"II": lead_ii, "III": lead_iii})
    assert np.array_equal(derived["I"], lead_ii - lead_iii)
    assert "aVF" in derived


def test_stored_leads_are_never_replaced_by_derived_ones():
    lead_i = np.array([1.0], dtype=np.float32)
    lead_ii = np.array([2.0], dtype=np.float32)
    stored_avr = np.array([99.0], dtype=np.float32)
    derived = derive_limb_leads({"I": lead_i, "II": lead_ii, "aVR": stored_avr})
    assert "aVR" not in derived
    assert set(derived) == {"III", "aVL", "aVF"}


def test_one_limb_lead_derives_nothing():
    assert derive_limb_leads({"II": np.zeros(3, dtype=np.float32)}) == {}


def test_signal_orders_leads_and_records_where_they_came_from():
    signal = build_signal(
        [("V5", np.ones(4)), ("MLII", np.full(4, 2.0)), ("Lead I", np.zeros(4))], 250, "csv"
    )
    assert signal.leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V5")
    assert signal.source_leads[:2] == ("Lead I", "MLII")
    assert signal.source_leads[2] is None
    assert signal.derived_leads == ("III", "aVR", "aVL", "aVF")
    assert signal.samples.dtype == np.float32
    assert signal.samples.shape == (7, 4)


def test_two_channels_with_the_same_lead_keep_both():
    signal = build_signal([("II", np.zeros(2)), ("MLII", np.ones(2))], 250, "csv")
    assert signal.leads == ("II", "MLII")
