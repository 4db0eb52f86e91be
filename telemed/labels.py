"""The label registry: every enum value a person reads, in the reader's language.

Pages, notifications and error messages word codes through here, so no code reaches a
reader as text. Labels are lazy: they are worded when shown, in the locale of the moment.
"""

from __future__ import annotations

import enum

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from telemed.domain.beds import AdmissionStatus
from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.domain.dicom_identity import IdentityMismatch
from telemed.domain.live_rules import RoomRole
from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.models.cases import Disposition
from telemed.models.consortium import ClinicalTitle, InstitutionKind, ReadingKind, Role, Sex
from telemed.models.dicom_node import PullStatus, Retrieve
from telemed.models.jobs import JobRunStatus
from telemed.models.live import RoomStatus
from telemed.models.scheduling import BookingStatus, Pool, ServiceType, SlotStatus, WaitlistStatus

LABELS: dict[type[enum.Enum], dict[enum.Enum, object]] = {
    BookingStatus: {
        BookingStatus.HELD: _l("held"),
        BookingStatus.OFFERED: _l("offered to you"),
        BookingStatus.BOOKED: _l("booked"),
        BookingStatus.CHECKED_IN: _l("checked in"),
        BookingStatus.COMPLETED: _l("completed"),
        BookingStatus.NO_SHOW: _l("no-show"),
        BookingStatus.CANCELLED: _l("cancelled"),
        BookingStatus.EXPIRED: _l("expired"),
    },
    ServiceType: {
        ServiceType.OUTPATIENT: _l("Outpatient visit"),
        ServiceType.REMOTE_CONSULT: _l("Remote consult"),
    },
    Pool: {Pool.DOWN_SHARED: _l("down-shared"), Pool.HOSPITAL: _l("hospital pool")},
    CaseStatus: {
        CaseStatus.DRAFT: _l("draft"),
        CaseStatus.SUBMITTED: _l("submitted"),
        CaseStatus.ACCEPTED: _l("accepted"),
        CaseStatus.DECLINED: _l("declined"),
        CaseStatus.SCHEDULED: _l("scheduled"),
        CaseStatus.IN_SESSION: _l("in session"),
        CaseStatus.CLAIMED: _l("claimed"),
        CaseStatus.REPORTED: _l("reported"),
        CaseStatus.CLOSED: _l("closed"),
        CaseStatus.CANCELLED: _l("cancelled"),
    },
    RoomStatus: {
        RoomStatus.SCHEDULED: _l("scheduled"),
        RoomStatus.LIVE: _l("live"),
        RoomStatus.ENDED: _l("ended"),
    },
    ReferralStatus: {
        ReferralStatus.REQUESTED: _l("requested"),
        ReferralStatus.ACCEPTED: _l("accepted"),
        ReferralStatus.DECLINED: _l("declined"),
        ReferralStatus.CANCELLED: _l("cancelled"),
        ReferralStatus.SCHEDULED: _l("scheduled"),
        ReferralStatus.COMPLETED: _l("completed"),
        ReferralStatus.FOLLOWED_UP: _l("followed up"),
    },
    CaseKind: {
        CaseKind.CONSULT: _l("Remote consult"),
        CaseKind.ECG_READ: _l("ECG read"),
        CaseKind.IMAGING_READ: _l("Imaging read"),
    },
    Priority: {
        Priority.ROUTINE: _l("routine"),
        Priority.URGENT: _l("urgent"),
        Priority.CRITICAL: _l("critical"),
    },
    AdmissionStatus: {
        AdmissionStatus.REQUESTED: _l("requested"),
        AdmissionStatus.ACCEPTED: _l("accepted"),
        AdmissionStatus.DECLINED: _l("declined"),
        AdmissionStatus.CANCELLED: _l("cancelled"),
        AdmissionStatus.ADMITTED: _l("admitted"),
        AdmissionStatus.DISCHARGED: _l("discharged"),
    },
    Direction: {Direction.UP: _l("upward"), Direction.DOWN: _l("downward")},
    ReadingKind: {ReadingKind.ECG: _l("ECG"), ReadingKind.IMAGING: _l("imaging")},
    JobRunStatus: {
        JobRunStatus.REQUESTED: _l("requested"),
        JobRunStatus.RUNNING: _l("running"),
        JobRunStatus.OK: _l("succeeded"),
        JobRunStatus.FAILED: _l("failed"),
        JobRunStatus.ABANDONED: _l("abandoned (its process stopped)"),
    },
    RoomRole: {
        RoomRole.SPECIALIST: _l("specialist"),
        RoomRole.DOCTOR: _l("requesting doctor"),
        RoomRole.OBSERVER: _l("observer"),
    },
    Disposition: {
        Disposition.MANAGE_LOCALLY: _l("Manage locally"),
        Disposition.REFER_UP: _l("Refer up (green channel)"),
        Disposition.FOLLOW_UP: _l("Follow up at the member institution"),
    },
    SlotStatus: {SlotStatus.OPEN: _l("open"), SlotStatus.BLOCKED: _l("blocked")},
    WaitlistStatus: {
        WaitlistStatus.WAITING: _l("waiting"),
        WaitlistStatus.OFFERED: _l("seat offered"),
        WaitlistStatus.ACCEPTED: _l("accepted"),
        WaitlistStatus.EXPIRED: _l("expired"),
        WaitlistStatus.CANCELLED: _l("cancelled"),
    },
    Role: {
        Role.SPECIALIST: _l("Specialist"),
        Role.GRASSROOTS: _l("Grassroots doctor"),
        Role.REGISTRAR: _l("Registrar"),
        Role.ADMIN: _l("Administrator"),
    },
    ClinicalTitle: {
        ClinicalTitle.CHIEF_PHYSICIAN: _l("Chief physician"),
        ClinicalTitle.ASSOCIATE_CHIEF_PHYSICIAN: _l("Associate chief physician"),
        ClinicalTitle.ATTENDING_PHYSICIAN: _l("Attending physician"),
        ClinicalTitle.RESIDENT_PHYSICIAN: _l("Resident physician"),
    },
    Sex: {
        Sex.MALE: _l("male"),
        Sex.FEMALE: _l("female"),
        Sex.OTHER: _l("other"),
        Sex.UNKNOWN: _l("not recorded"),
    },
    InstitutionKind: {
        InstitutionKind.LEAD: _l("lead hospital"),
        InstitutionKind.SECONDARY: _l("secondary hospital"),
        InstitutionKind.TOWNSHIP: _l("township health centre"),
        InstitutionKind.COMMUNITY: _l("community health centre"),
        InstitutionKind.VILLAGE: _l("village clinic"),
    },
    Retrieve: {
        Retrieve.MOVE: _l("C-MOVE: the PACS sends the study to this platform"),
        Retrieve.GET: _l("C-GET: this platform fetches the study itself"),
    },
    PullStatus: {
        PullStatus.REQUESTED: _l("requested"),
        PullStatus.DONE: _l("received"),
        PullStatus.FAILED: _l("failed"),
    },
}


def label(value: enum.Enum | None) -> str:
    if value is None:
        return ""
    return str(LABELS.get(type(value), {}).get(value, value.value))


def identity_mismatch(mismatch: IdentityMismatch) -> str:
    """A file's patient that differs from the case's, in the reader's language."""
    if mismatch.field == "name":
        return gettext(
            "the file names the patient '%(in_file)s', the case '%(in_case)s'",
            in_file=mismatch.in_file,
            in_case=mismatch.in_case,
        )
    return gettext(
        "the file's patient ID '%(in_file)s' is not the case patient's",
        in_file=mismatch.in_file,
    )


# An ECG recording's format, by the code its reader gives (telemed/ecg/signal.py).
ECG_FORMATS = {
    "dicom": _l("DICOM waveform"),
    "hl7_aecg": _l("HL7 aECG"),
    "wfdb": _l("WFDB"),
    "csv": _l("CSV"),
}


def _worded(table: dict[str, object], code: str | None) -> str:
    """A stored code's words from ``table``, or the code as it is when the table lacks it."""
    return str(table.get(code or "", code or ""))


def ecg_format(code: str | None) -> str:
    return _worded(ECG_FORMATS, code)


# Where a recording device's own values were read from (DeviceReport.source, stored as the
# reader wrote it). Vendor product names stay as they are; descriptions are worded.
DEVICE_SOURCES = {
    "DICOM waveform annotations": _l("DICOM waveform annotations"),
    "HL7 aECG annotations": _l("HL7 aECG annotations"),
    "SCP-ECG sections 8/11": _l("SCP-ECG sections 8/11"),
    "SCP-ECG section 10 (per lead, combined)": _l("SCP-ECG section 10 (per lead, combined)"),
}


def device_source(source: str | None) -> str:
    return _worded(DEVICE_SOURCES, source)
