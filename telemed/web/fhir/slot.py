"""Slot: one FHIR Slot per telemed slot *and pool*, as the caller sees it.

A telemed slot has seats in two pools: down-shared (member institutions book them) and
the hospital's own (the registrar books them). Each pool of a slot in which the caller
counts seats is a FHIR Slot with the id ``<slot id>-<pool>`` (``42-down-shared``,
``42-hospital``), tagged ``CodeSystem/pool|down-shared`` or ``|hospital``:

- a grassroots doctor sees only down-shared Slots, counting the seats their institution
  may take (open seats and those allotted to it); the registrar sees only hospital
  Slots; specialists and admins see both, counting every seat of the pool;
- ``status`` is ``free`` when the slot is open, has not started and a counted seat is
  free; ``busy`` when every counted seat is taken; ``busy-unavailable`` when the
  specialist blocked the slot or it has started (``busy-tentative`` and
  ``entered-in-error`` are never used);
- the counted and free seats are in the extensions ``StructureDefinition/slot-seats``
  and ``StructureDefinition/slot-free-seats``; when booking a free Slot would still be refused
  (its pool opens later: the early-access window), ``comment`` says why.

The availability is the one services/scheduling/booking.py computes for the JSON API, so a Slot
shown free is exactly a seat ``book_slot`` may claim. ``Appointment.slot`` may name
``Slot/<id>-<pool>`` or ``Slot/<id>`` (meaning the caller's own pool).
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from telemed.errors import NotFound
from telemed.extensions import db
from telemed.models.consortium import Department
from telemed.models.scheduling import Pool, ServiceType, SlotStatus
from telemed.services.accounts import scopes
from telemed.services.scheduling import booking
from telemed.services.scheduling.booking import Availability, SlotAvailability, SlotFilter
from telemed.services.scheduling.slot_versions import slot_versions
from telemed.web.fhir import bp, codes
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import parse_search, searchset
from telemed.web.fhir.wire import check_vread, instant, meta, resource_response
from telemed.web.security import current_actor

SLOT_STATUS = "http://hl7.org/fhir/slotstatus"
STATUS_OF = {
    Availability.FREE: "free",
    Availability.FULL: "busy",
    Availability.UNAVAILABLE: "busy-unavailable",
}
# FHIR statuses telemed never gives a Slot still match (nothing) when asked for.
AVAILABILITY_OF: dict[str, Availability | None] = {
    **{status: availability for availability, status in STATUS_OF.items()},
    "busy-tentative": None,
    "entered-in-error": None,
}
SERVICE_TYPES = {s.value: s for s in ServiceType}
SLOT_ID = re.compile(r"^(\d{1,18})(?:-(down-shared|hospital))?$")

RESOURCE = register(
    ResourceDefinition(
        type="Slot",
        interactions=("read", "vread", "search-type"),
        versioning="versioned",
        documentation="One Slot per telemed slot and pool as the caller sees it (id "
        "<slot>-<pool>); free when a seat the caller may take is free. The version moves "
        "with every change to the slot, its seats or their bookings (not with the clock: "
        "a slot that starts becomes busy-unavailable at the same version).",
        search_params=(
            SearchParam("schedule", "reference", "Schedule/<id>.", targets=("Schedule",)),
            SearchParam(
                "status",
                "token",
                "free, busy or busy-unavailable (blocked or started), from the caller's view.",
            ),
            SearchParam(
                "start",
                "date",
                "Start time; prefixes eq, ge, le, gt, lt; repeat for a range. Dates without "
                "an offset are in the consortium's zone.",
            ),
            SearchParam(
                "service-type",
                "token",
                f"{codes.SERVICE_TYPE.in_docs}: " + ", ".join(SERVICE_TYPES) + ".",
            ),
            SearchParam(
                "specialty", "token", f"Department code ({codes.DEPARTMENT.in_docs}|<code>)."
            ),
            SearchParam(
                "_tag",
                "token",
                f"Pool: {codes.POOL.in_docs}|down-shared or {codes.POOL.in_docs}|hospital.",
            ),
        ),
    )
)


def fhir_slot_id(slot_id: int, pool: Pool) -> str:
    return f"{slot_id}-{codes.POOL_CODES[pool]}"


def parse_slot_id(value: str) -> tuple[int, Pool | None] | None:
    """``42-down-shared`` into (42, down-shared); ``42`` into (42, None); else None."""
    match = SLOT_ID.match(value)
    if match is None:
        return None
    pool = codes.POOL_BY_CODE[match.group(2)] if match.group(2) else None
    return int(match.group(1)), pool


def _comment(row: SlotAvailability) -> str:
    if row.slot.status is SlotStatus.BLOCKED:
        return "blocked by the specialist"
    text = f"{row.free} of {row.seats} seat(s) free"
    if row.availability is Availability.FREE and row.refusal:
        text += f"; not bookable yet: {row.refusal}"
    return text


def slot_resource(row: SlotAvailability, version: int) -> dict[str, Any]:
    slot = row.slot
    schedule = (
        {"reference": f"Schedule/{slot.schedule_id}"}
        if slot.schedule_id is not None
        else {"display": "not from a published schedule"}
    )
    return {
        "resourceType": "Slot",
        "id": fhir_slot_id(slot.id, row.pool),
        "meta": meta(version=version, tag=[codes.pool_tag(row.pool)]),
        "extension": [
            {"url": codes.SLOT_SEATS.url, "valueUnsignedInt": row.seats},
            {"url": codes.SLOT_FREE_SEATS.url, "valueUnsignedInt": row.free},
        ],
        "serviceType": [codes.service_type_concept(slot.service_type)],
        "specialty": [codes.department_concept(slot.department)],
        "schedule": schedule,
        "status": STATUS_OF[row.availability],
        "start": instant(slot.starts_at),
        "end": instant(slot.ends_at),
        "overbooked": False,
        "comment": _comment(row),
    }


def _department_ids(actor, department_codes: list[str]) -> list[int]:
    visible = select(Department.id).where(
        Department.id.in_(scopes.departments_of_consortium(actor.consortium_id)),
        Department.code.in_(department_codes),
    )
    return list(db.session.execute(visible).scalars())


@bp.get("/Slot")
def search_slots():
    actor = current_actor()
    search = parse_search(RESOURCE)
    statuses = search.codes("status", SLOT_STATUS, AVAILABILITY_OF)
    departments = search.plain_codes("specialty", codes.DEPARTMENT.url)
    interval = search.interval("start")
    filters = SlotFilter(
        starts_from=interval.starts_from if interval else None,
        starts_before=interval.starts_before if interval else None,
        schedule_ids=search.ids("schedule"),
        department_ids=None if departments is None else _department_ids(actor, departments),
        service_types=search.codes("service-type", codes.SERVICE_TYPE.url, SERVICE_TYPES),
        pools=search.codes("_tag", codes.POOL.url, codes.POOL_BY_CODE),
        availability=None if statuses is None else [s for s in statuses if s is not None],
    )
    total, rows = booking.slot_availability(
        actor, filters, limit=search.count, offset=search.offset
    )
    versions = slot_versions({r.slot.id for r in rows})
    resources = [slot_resource(r, versions[r.slot.id]) for r in rows]
    return resource_response(searchset(search, total, resources))


@bp.get("/Slot/<resource_id>")
def read_slot(resource_id: str):
    return resource_response(_read_slot(resource_id))


@bp.get("/Slot/<resource_id>/_history/<version>")
def vread_slot(resource_id: str, version: str):
    resource = _read_slot(resource_id)
    check_vread("Slot", resource_id, version, int(resource["meta"]["versionId"]))
    return resource_response(resource)


def _read_slot(resource_id: str) -> dict[str, Any]:
    parsed = parse_slot_id(resource_id)
    if parsed is None or parsed[1] is None:
        raise NotFound(
            _l(
                "%(resource)s not found (Slot ids are <slot>-<pool>)",
                resource=f"Slot/{resource_id}",
            )
        )
    slot_id, pool = parsed
    _total, rows = booking.slot_availability(
        current_actor(), SlotFilter(slot_ids=(slot_id,), pools=(pool,)), limit=1
    )
    if not rows:
        raise NotFound(_l("%(resource)s not found", resource=f"Slot/{resource_id}"))
    return slot_resource(rows[0], slot_versions([slot_id])[slot_id])
