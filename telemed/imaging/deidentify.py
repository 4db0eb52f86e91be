"""De-identification for teaching or sharing outside the consortium: the DICOM PS3.15
Annex E Basic Application Level Confidentiality Profile.

Every attribute of the profile's table (PS3.15 Table E.1-1, transcribed as data in
``confidentiality_table``) is removed (X), emptied (Z), given a dummy value (D) or has
its UID replaced (U), as its Basic Profile column says; with the Retain Longitudinal
Temporal Information Full Dates option, the dates and times the table marks K for it are
kept. Private tags are removed; every UID that is not the standard's own is replaced with
one derived from it and a secret of the export, so references between the files of the
export stay consistent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from telemed.imaging import confidentiality_table

# Dates, times and date-times the table does not list are removed too (the table lists
# those the IODs define; an unlisted one is as telling), unless the Retain Longitudinal
# Temporal Information (Full Dates) option is asked for.
TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})

# What a D (dummy) action writes, per VR: a value of the right form that says nothing.
DUMMY_TEXT = "ANONYMOUS"
DUMMY_BY_VR: dict[str, object] = {
    "PN": DUMMY_TEXT,
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "DS": "0",
    "IS": "0",
    **dict.fromkeys(("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"), 0),
    **dict.fromkeys(("AE", "CS", "LO", "LT", "SH", "ST", "UC", "UR", "UT"), DUMMY_TEXT),
}

# UIDs of the standard (SOP classes, transfer syntaxes, coding schemes) are not identifying.
STANDARD_UID_ROOT = "1.2.840.10008."


class UidMap:
    """Old UID → new UID, the same for every file of one export."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.seen: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        uid = str(uid)
        if uid.startswith(STANDARD_UID_ROOT) or not uid:
            return uid
        new = self.seen.get(uid)
        if new is None:
            digest = hashlib.sha256(self.secret + uid.encode()).digest()
            # 2.25 + a 128-bit integer: a UID that needs no registered root (PS3.5 B.2).
            new = "2.25." + str(int.from_bytes(digest[:16], "big"))
            self.seen[uid] = new
        return new


def action_for(tag: int, vr: str, *, retain_dates: bool) -> str | None:
    """The profile's action on one attribute: X, Z, D, U, U* (the UIDs inside a
    sequence), or None (kept; a sequence's items are still scrubbed, an unlisted UID still
    replaced). Where the table leaves the choice to the attribute's type in the IOD (X/Z,
    X/D, Z/D, X/Z/D, X/Z/U*), the first, most removing, is taken."""
    row = confidentiality_table.row_for(tag)
    if row is None:
        if vr in TEMPORAL_VRS and not retain_dates:
            return "X"
        return None
    if retain_dates and row.keep_with_dates:
        return None
    return row.action.split("/")[0]


def dummy_for(vr: str, value, uids: UidMap):
    """A D action's value for an element of ``vr`` (a UI's is its replacement)."""
    if vr == "UI":
        return [uids(v) for v in value] if isinstance(value, list) else uids(value or "")
    return DUMMY_BY_VR.get(vr, "")


def _replace_uids(element, uids: UidMap) -> None:
    if element.VM > 1:
        element.value = [uids(v) for v in element.value]
    else:
        element.value = uids(element.value)


def _scrub(dataset, uids: UidMap, retain_dates: bool = False) -> None:
    dataset.remove_private_tags()
    for element in list(dataset):
        action = action_for(int(element.tag), element.VR, retain_dates=retain_dates)
        if action == "X":
            del dataset[element.tag]
            continue
        if action == "Z":
            element.value = None if element.VR == "SQ" else ""
            continue
        if action == "D" and element.VR != "SQ":
            element.value = dummy_for(element.VR, element.value, uids)
            continue
        # U, U*, D of a sequence (its items made anonymous in turn), kept: every UID that
        # is not the standard's is replaced, listed (U) or not.
        if element.VR == "UI" and element.value:
            _replace_uids(element, uids)
        elif element.VR == "SQ":
            for item in element.value:
                _scrub(item, uids, retain_dates)


def deidentify_file(
    source: Path, target: Path, uids: UidMap, pseudonym: str, *, retain_dates: bool = False
) -> None:
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import AllTransferSyntaxes

    ds = pydicom.dcmread(source)
    syntax = ds.file_meta.get("TransferSyntaxUID")
    # Whether pydicom writes a syntax it does not list depends on what plugins were
    # imported before: refuse those, so the answer never depends on import order.
    if syntax is not None and syntax not in AllTransferSyntaxes:
        raise ValueError(f"Transfer Syntax {syntax} cannot be written back here")
    _scrub(ds, uids, retain_dates)
    ds.PatientName = pseudonym
    ds.PatientID = pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "DICOM PS3.15 Basic Application Confidentiality Profile"
    codes = [("113100", "Basic Application Confidentiality Profile")]
    if retain_dates:
        codes.append(("113106", "Retain Longitudinal Temporal Information Full Dates Option"))
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    else:
        ds.LongitudinalTemporalInformationModified = "REMOVED"
    items = []
    for value, meaning in codes:
        code = Dataset()
        code.CodeValue = value
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = meaning
        items.append(code)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    meta = ds.file_meta
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle"):
        if keyword in meta:
            del meta[keyword]
    ds.preamble = bytes(128)
    ds.save_as(target, enforce_file_format=True)
