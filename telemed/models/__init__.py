"""Typed tables, one module per area. Importing this package registers them all."""

from telemed.models.accounts import ApiToken, LoginAttempt, LoginSession, LoginThrottle
from telemed.models.attendance import BookingSuspension, ConsortiumPolicy
from telemed.models.audit import AuditEvent, AuditOutcome
from telemed.models.beds import Admission, BedDay, BedInventory
from telemed.models.case_files import DicomInstance, EcgRecording, UploadSession
from telemed.models.cases import Case, CaseTransition, Disposition, Report
from telemed.models.consortium import (
    Consortium,
    Department,
    Institution,
    InstitutionKind,
    Patient,
    ReadingKind,
    Role,
    Sex,
    User,
)
from telemed.models.dicom_node import DicomNode, DicomPull, InboxInstance, PullStatus, Retrieve
from telemed.models.idempotency import IdempotencyRecord
from telemed.models.jobs import JobRun, JobRunStatus, SchedulerLease
from telemed.models.live import ConsultSession, LiveTicket, RoomEvent, RoomStatus
from telemed.models.notifications import Notification, NotificationDelivery
from telemed.models.quota import QuotaSnapshot
from telemed.models.referrals import Referral, ReferralAttachment, ReferralTransition
from telemed.models.scheduling import (
    OCCUPYING_STATUSES,
    Booking,
    BookingStatus,
    DepartmentPolicy,
    PolicyAllotment,
    Pool,
    Schedule,
    ScheduleAllotment,
    ServiceType,
    Slot,
    SlotSeat,
    SlotStatus,
    WaitlistEntry,
    WaitlistStatus,
)

__all__ = [
    "OCCUPYING_STATUSES",
    "Admission",
    "ApiToken",
    "AuditEvent",
    "AuditOutcome",
    "BedDay",
    "BedInventory",
    "Booking",
    "BookingStatus",
    "BookingSuspension",
    "Case",
    "CaseTransition",
    "Consortium",
    "ConsortiumPolicy",
    "ConsultSession",
    "Department",
    "DepartmentPolicy",
    "DicomInstance",
    "DicomNode",
    "DicomPull",
    "Disposition",
    "EcgRecording",
    "IdempotencyRecord",
    "InboxInstance",
    "Institution",
    "InstitutionKind",
    "JobRun",
    "JobRunStatus",
    "LiveTicket",
    "LoginAttempt",
    "LoginSession",
    "LoginThrottle",
    "Notification",
    "NotificationDelivery",
    "Patient",
    "PolicyAllotment",
    "Pool",
    "PullStatus",
    "QuotaSnapshot",
    "ReadingKind",
    "Referral",
    "ReferralAttachment",
    "ReferralTransition",
    "Report",
    "Retrieve",
    "Role",
    "RoomEvent",
    "RoomStatus",
    "Schedule",
    "ScheduleAllotment",
    "SchedulerLease",
    "ServiceType",
    "Sex",
    "Slot",
    "SlotSeat",
    "SlotStatus",
    "UploadSession",
    "User",
    "WaitlistEntry",
    "WaitlistStatus",
]
