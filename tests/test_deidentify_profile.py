"""De-identification against PS3.15 Table E.1-1 (the Basic Profile column), attribute by
attribute, on every sample file (the tests' own and those in shared/samples/dicom): X
removed, Z emptied, D a dummy of the attribute's form, U a new UID; where the table
leaves the choice to the IOD, the first; dates and times the table does not list
removed; with the Retain Longitudinal Temporal Information Full Dates option, the ones
the table marks K for it kept (and only those, of the listed ones); private tags gone;
UIDs that are not the standard's replaced."""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_description, dictionary_has_tag, keyword_for_tag

from telemed.imaging import confidentiality_table
from telemed.imaging.deidentify import (
    DUMMY_BY_VR,
    STANDARD_UID_ROOT,
    UidMap,
    action_for,
    deidentify_file,
)
from tests import dicom_files


def shared_dicom() -> Path:
    """``shared/samples/dicom`` beside the repository (read in place, never copied)."""
    root = Path(__file__).resolve().parents[1]
    for base in (root.parent, root.parent.parent):
        candidate = base / "shared" / "samples" / "dicom"
        if candidate.is_dir():
            return candidate
    raise AssertionError(f"shared/samples/dicom not found beside {root.name}")


# Files that cannot be written back are refused by the export as a whole (below).
UNWRITABLE = {"liver_deflate.dcm"}  # Deflated Image Frame Compression: pydicom cannot write it
SAMPLES = sorted(
    path
    for folder in (dicom_files.DATA, shared_dicom())
    for path in folder.glob("*.dcm")
    if "truncated" not in path.name and "too_short" not in path.name and path.name not in UNWRITABLE
)
DATES = {"DA", "DT", "TM"}
# What the export writes itself about the de-identification.
WRITTEN = {"PatientName", "PatientID", "PatientIdentityRemoved", "DeidentificationMethod"}


def walk(dataset, path=()):
    for element in dataset:
        yield path, element
        if element.VR == "SQ" and element.value:
            for index, item in enumerate(element.value):
                yield from walk(item, (*path, (element.tag, index)))


def find(dataset, path, tag):
    for sequence_tag, index in path:
        if sequence_tag not in dataset or len(dataset[sequence_tag].value) <= index:
            return None
        dataset = dataset[sequence_tag].value[index]
    return dataset.get(tag)


def deidentified(source: Path, tmp_path: Path, retain_dates: bool):
    target = tmp_path / f"{source.parent.name}-{source.stem}-{int(retain_dates)}.dcm"
    deidentify_file(source, target, UidMap(b"secret"), "CASE1-ABC", retain_dates=retain_dates)
    return pydicom.dcmread(target)


def expected(tag: int, retain_dates: bool) -> str | None:
    """What the table itself says, read here without the code under test."""
    row = confidentiality_table.row_for(tag)
    if row is None:
        return None
    if retain_dates and row.keep_with_dates:
        return "K"
    return row.action.split("/")[0]


def test_the_table_names_real_attributes():
    """Every transcribed tag is the attribute the table names (pydicom's dictionary is
    built from the standard too): a mistyped tag would name another, or none."""

    def plain(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower().replace("(trial)", ""))

    rows = confidentiality_table.ROWS
    assert len(rows) == len({r.tag for r in rows}) > 400
    for row in rows:
        assert re.fullmatch(r"X/Z/U\*|X/Z/D|X/Z|X/D|Z/D|[DZXU]", row.action), row
        if "x" in row.tag:
            continue
        tag = int(row.tag, 16)
        assert dictionary_has_tag(tag), row
        assert plain(dictionary_description(tag)) == plain(row.name), row
    overlay = confidentiality_table.row_for(0x60024000)
    assert overlay is not None and overlay.name == "Overlay Comments"
    assert confidentiality_table.row_for(0x00280010) is None  # Rows: not in the table


@pytest.mark.parametrize("source", SAMPLES, ids=[f"{p.parent.name}/{p.name}" for p in SAMPLES])
@pytest.mark.parametrize("retain_dates", [False, True], ids=["basic", "retain-dates"])
def test_every_attribute_follows_the_table(source, retain_dates, tmp_path):
    original = pydicom.dcmread(source)
    result = deidentified(source, tmp_path, retain_dates)
    checked = 0
    listed = 0
    for path, element in walk(original):
        keyword = keyword_for_tag(element.tag) or ""
        if keyword in WRITTEN and not path:
            continue
        if any(expected(int(t), retain_dates) in ("X", "Z") for t, _ in path):
            continue  # inside a sequence the table removes or empties as a whole
        after = find(result, path, element.tag)
        where = f"{source.name}: {'/'.join(str(t) for t, _ in path)}/{keyword or element.tag}"
        checked += 1
        if element.tag.is_private:
            assert after is None, f"{where}: private tag kept"
            continue
        action = expected(int(element.tag), retain_dates)
        assert action_for(int(element.tag), element.VR, retain_dates=retain_dates) == (
            None if action == "K" else action
        ) or (action is None and element.VR in DATES), where
        listed += action is not None
        if action == "X":
            assert after is None, f"{where}: X kept"
        elif action == "Z":
            assert after is not None and after.value in ("", None, []), f"{where}: Z not empty"
        elif action == "D" and element.VR == "SQ":
            assert after is not None and len(after.value) == len(element.value), where
        elif action == "D" and element.VR != "UI":
            assert after is not None and after.value == DUMMY_BY_VR.get(element.VR, ""), where
        elif action == "K":
            assert after is not None and after.value == element.value, f"{where}: not kept"
        elif action is None and element.VR in DATES:
            if retain_dates:
                assert after is not None and after.value == element.value, f"{where}: date lost"
            else:
                assert after is None, f"{where}: unlisted date kept {after.value!r}"
        if element.VR == "UI" and element.value and action in (None, "U", "D"):
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                if not str(value).startswith(STANDARD_UID_ROOT):
                    assert str(value) not in str(after.value), f"{where}: UID kept"
    assert checked > 10 and listed > 3
    assert not any(e.tag.is_private for _, e in walk(result))
    option = result.LongitudinalTemporalInformationModified
    assert option == ("UNMODIFIED" if retain_dates else "REMOVED")
    codes = [item.CodeValue for item in result.DeidentificationMethodCodeSequence]
    assert codes == (["113100", "113106"] if retain_dates else ["113100"])


def test_the_full_dates_option_keeps_only_what_the_table_lets_it(tmp_path):
    source = dicom_files.sample("CT_small.dcm")
    ds = pydicom.dcmread(source)
    ds.PatientBirthDate = "19491231"  # Z in the table, not K under the option
    ds.SeriesDate = "20240102"  # X/D, K under the option
    ds.StationName = "CT-ROOM-3"  # X/Z/D: removed
    ds.VerifyingObserverName = "Dr^Who"  # D
    ds.DeviceSerialNumber = "SN-1234"  # X/Z/D
    edited = tmp_path / "edited.dcm"
    ds.save_as(edited, enforce_file_format=True)
    result = deidentified(edited, tmp_path, retain_dates=True)
    assert result.PatientBirthDate == ""
    assert result.SeriesDate == "20240102"
    assert "StationName" not in result and "DeviceSerialNumber" not in result
    assert result.VerifyingObserverName == "ANONYMOUS"
    basic = deidentified(edited, tmp_path, retain_dates=False)
    assert "SeriesDate" not in basic and basic.PatientBirthDate == ""


def test_the_exam_date_of_the_performed_procedure_step_is_gone(tmp_path):
    source = dicom_files.sample("examples_ybr_color.dcm")  # an ultrasound image
    original = pydicom.dcmread(source)
    assert original.PerformedProcedureStepStartDate == "20160503"  # the exam's date
    result = deidentified(source, tmp_path, retain_dates=False)
    for keyword in ("PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime"):
        assert keyword not in result
    kept = deidentified(source, tmp_path, retain_dates=True)
    assert kept.PerformedProcedureStepStartDate == original.PerformedProcedureStepStartDate


def test_a_file_that_cannot_be_written_back_is_refused_not_half_done(tmp_path):
    with pytest.raises(ValueError, match="Transfer Syntax"):
        deidentified(dicom_files.sample("liver_deflate.dcm"), tmp_path, retain_dates=False)
    assert not list(tmp_path.glob("liver_deflate*"))
