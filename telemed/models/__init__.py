"""Typed tables, one module per area. Importing this package registers them all."""

from telemed.models.accounts import ApiToken, LoginAttempt, LoginSession
from telemed.models.audit import AuditEvent, AuditOutcome
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
from telemed.models.idempotency import IdempotencyRecord
from telemed.models.live import ConsultSession, LiveTicket, RoomEvent, RoomStatus
from telemed.models.notifications import Notification, NotificationDelivery
from telemed.models.scheduling import (
    OCCUPYING_STATUSES,
    Booking,
    BookingStatus,
    DepartmentPolicy,
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
    "ApiToken",
    "AuditEvent",
    "AuditOutcome",
    "Booking",
    "BookingStatus",
    "Case",
    "CaseTransition",
    "Consortium",
    "ConsultSession",
    "Department",
    "DepartmentPolicy",
    "Disposition",
    "IdempotencyRecord",
    "Institution",
    "InstitutionKind",
    "LiveTicket",
    "LoginAttempt",
    "LoginSession",
    "Notification",
    "NotificationDelivery",
    "Patient",
    "Pool",
    "ReadingKind",
    "Report",
    "Role",
    "RoomEvent",
    "RoomStatus",
    "Schedule",
    "ScheduleAllotment",
    "ServiceType",
    "Sex",
    "Slot",
    "SlotSeat",
    "SlotStatus",
    "User",
    "WaitlistEntry",
    "WaitlistStatus",
]
