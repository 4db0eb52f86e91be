"""De-identification against the PS3.15 Basic Profile's table, attribute by attribute, on
every sample file: X removed, Z emptied, D replaced, every date and time removed or
emptied (kept only with the Retain Longitudinal Temporal Information option), private
tags gone, identifying UIDs replaced."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import keyword_for_tag

from telemed.imaging.deidentify import BASIC_PROFILE, STANDARD_UID_ROOT, UidMap, deidentify_file
from tests import dicom_files

# Files that cannot be written back are refused by the export as a whole (below).
UNWRITABLE = {"liver_deflate.dcm"}  # Deflated Image Frame Compression: pydicom cannot write it
SAMPLES = sorted(
    path
    for path in dicom_files.DATA.glob("*.dcm")
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
    target = tmp_path / f"{source.stem}-{int(retain_dates)}.dcm"
    deidentify_file(source, target, UidMap(b"secret"), "CASE1-ABC", retain_dates=retain_dates)
    return pydicom.dcmread(target)


@pytest.mark.parametrize("source", SAMPLES, ids=[p.name for p in SAMPLES])
@pytest.mark.parametrize("retain_dates", [False, True], ids=["basic", "retain-dates"])
def test_every_attribute_follows_the_table(source, retain_dates, tmp_path):
    original = pydicom.dcmread(source)
    result = deidentified(source, tmp_path, retain_dates)
    checked = 0
    for path, element in walk(original):
        keyword = keyword_for_tag(element.tag) or ""
        if keyword in WRITTEN and not path:
            continue
        if any(keyword_for_tag(t) in BASIC_PROFILE for t, _ in path):
            continue  # inside a sequence the table removes or empties as a whole
        after = find(result, path, element.tag)
        where = f"{source.name}: {'/'.join(str(t) for t, _ in path)}/{keyword or element.tag}"
        checked += 1
        if element.tag.is_private:
            assert after is None, f"{where}: private tag kept"
            continue
        action = BASIC_PROFILE.get(keyword)
        if element.VR in DATES:
            if retain_dates:
                assert after is not None and after.value == element.value, f"{where}: date lost"
            else:
                assert after is None or after.value in ("", None), f"{where}: {after.value!r}"
            continue
        if action == "X":
            assert after is None, f"{where}: X kept"
        elif action == "Z":
            assert after is not None and after.value in ("", None, []), f"{where}: Z not empty"
        elif action == "D":
            assert after is not None and after.value in ("ANONYMOUS", ""), f"{where}: D kept"
        elif element.VR == "UI" and element.value and action is None:
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                if not str(value).startswith(STANDARD_UID_ROOT):
                    assert str(value) not in str(after.value), f"{where}: UID kept"
    assert checked > 10
    assert not any(e.tag.is_private for _, e in walk(result))
    option = result.LongitudinalTemporalInformationModified
    assert option == ("UNMODIFIED" if retain_dates else "REMOVED")
    codes = [item.CodeValue for item in result.DeidentificationMethodCodeSequence]
    assert codes == (["113100", "113106"] if retain_dates else ["113100"])


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
