"""The DICOM node's rules on plain values: AE titles, PACS addresses, and which open case
a received instance belongs to."""

from __future__ import annotations

import pytest

from telemed.domain.dicom_node import (
    BadSetting,
    OpenCase,
    check_port,
    matching_case,
    normalise_ae_title,
    normalise_host,
)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("TS1_PACS", "TS1_PACS"),
        ("  CT 01  ", "CT 01"),
        ("A" * 16, "A" * 16),
        ("a-b.c@1", "a-b.c@1"),
    ],
)
def test_ae_titles_keep_their_significant_characters(raw, stored):
    assert normalise_ae_title(raw) == stored


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("", "required"),
        ("   ", "required"),
        ("A" * 17, "length"),
        ("BAD\\AE", "characters"),
        ("TAB\tAE", "characters"),
        ("NUL\x00", "characters"),
        ("超声科", "characters"),
    ],
)
def test_ae_titles_that_break_the_rules_are_refused(raw, rule):
    with pytest.raises(BadSetting) as refused:
        normalise_ae_title(raw, "pacs_ae_title")
    assert refused.value.rule == rule and refused.value.field == "pacs_ae_title"


def test_hosts_and_ports():
    assert normalise_host(" pacs.ts1.local ") == "pacs.ts1.local"
    assert normalise_host("10.0.0.5") == "10.0.0.5"
    assert normalise_host("[::1]") == "::1"
    for bad in ("", "bad host", "-x", "a/b", "h" * 254):
        with pytest.raises(BadSetting):
            normalise_host(bad)
    assert check_port(104) == 104
    for bad in (0, 65536, -1):
        with pytest.raises(BadSetting):
            check_port(bad)


def case(case_id, patient="", studies=(), accessions=()):
    return OpenCase(
        case_id, frozenset([patient] if patient else []), frozenset(studies), frozenset(accessions)
    )


def test_the_same_study_or_accession_wins_over_the_patient():
    cases = [case(1, patient="P1"), case(2, patient="P9", studies={"1.2.3"}, accessions={"A7"})]
    assert matching_case(cases, study_uid="1.2.3", accession_number=None, patient_id="P1") == 2
    assert matching_case(cases, study_uid="9.9", accession_number="A7", patient_id="P1") == 2
    assert matching_case(cases, study_uid="9.9", accession_number="", patient_id="P1") == 1


def test_no_match_or_two_equal_matches_leave_it_in_the_inbox():
    twins = [case(1, patient="P1"), case(2, patient="P1")]
    assert matching_case(twins, study_uid="9", accession_number=None, patient_id="P1") is None
    assert matching_case(twins, study_uid="9", accession_number=None, patient_id="") is None
    assert matching_case(twins, study_uid="9", accession_number=None, patient_id="P2") is None
    assert matching_case([], study_uid="9", accession_number="A", patient_id="P1") is None
