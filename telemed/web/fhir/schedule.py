"""Schedule: one per published schedule (read, search).

The actor is the specialist (Practitioner and PractitionerRole), the specialty the
department, the planning horizon the schedule's local date range. Its slots are the
Slots whose ``schedule`` points here.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from telemed.models.consortium import Department
from telemed.models.scheduling import Schedule, ServiceType
from telemed.services.accounts import scopes
from telemed.web.fhir import bp, codes, practitioner
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import page, parse_search, searchset
from telemed.web.fhir.wire import instant, meta, numeric_id, resource_response
from telemed.web.security import current_actor

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SERVICE_TYPES = {s.value: s for s in ServiceType}

RESOURCE = register(
    ResourceDefinition(
        type="Schedule",
        interactions=("read", "search-type"),
        documentation="One per published schedule of the consortium's specialists.",
        search_params=(
            SearchParam(
                "actor",
                "reference",
                "The specialist: Practitioner/<id> or PractitionerRole/<id>.",
                targets=("Practitioner", "PractitionerRole"),
            ),
            SearchParam(
                "service-type",
                "token",
                f"{codes.SERVICE_TYPE.in_docs}: " + ", ".join(SERVICE_TYPES) + ".",
            ),
            SearchParam(
                "specialty", "token", f"Department code ({codes.DEPARTMENT.in_docs}|<code>)."
            ),
        ),
    )
)


def _describe(schedule: Schedule) -> str:
    days = ", ".join(day for i, day in enumerate(WEEKDAYS) if schedule.weekday_mask & (1 << i))
    return (
        f"{days} {schedule.start_time:%H:%M}-{schedule.end_time:%H:%M} ({schedule.timezone}), "
        f"{schedule.slot_minutes}-minute slots, {schedule.seats_per_slot} seat(s) each, "
        f"{schedule.down_shared_per_slot} down-shared"
    )


def schedule_resource(schedule: Schedule) -> dict[str, Any]:
    zone = ZoneInfo(schedule.timezone)
    return {
        "resourceType": "Schedule",
        "id": str(schedule.id),
        "meta": meta(schedule.created_at),
        "active": True,
        "serviceType": [codes.service_type_concept(schedule.service_type)],
        "specialty": [codes.department_concept(schedule.department)],
        "actor": [
            practitioner.reference(schedule.specialist),
            {"reference": f"PractitionerRole/{schedule.specialist_id}"},
        ],
        "planningHorizon": {
            "start": instant(datetime.combine(schedule.valid_from, time.min, zone)),
            "end": instant(datetime.combine(schedule.valid_until, time(23, 59, 59), zone)),
        },
        "comment": _describe(schedule),
    }


def department_ids(department_codes: list[str]):
    return select(Department.id).where(Department.code.in_(department_codes))


@bp.get("/Schedule")
def search_schedules():
    search = parse_search(RESOURCE)
    query = scopes.schedules_visible_to(current_actor()).options(
        selectinload(Schedule.specialist), selectinload(Schedule.department)
    )
    actors = search.ids("actor")
    if actors is not None:
        query = query.where(Schedule.specialist_id.in_(actors))
    service_types = search.codes("service-type", codes.SERVICE_TYPE.url, SERVICE_TYPES)
    if service_types is not None:
        query = query.where(Schedule.service_type.in_(service_types))
    departments = search.plain_codes("specialty", codes.DEPARTMENT.url)
    if departments is not None:
        query = query.where(Schedule.department_id.in_(department_ids(departments)))
    total, rows = page(query, search, Schedule.valid_from, Schedule.id)
    return resource_response(searchset(search, total, [schedule_resource(s) for s in rows]))


@bp.get("/Schedule/<resource_id>")
def read_schedule(resource_id: str):
    schedule = scopes.get_schedule(current_actor(), numeric_id(resource_id, "Schedule"))
    return resource_response(schedule_resource(schedule))
