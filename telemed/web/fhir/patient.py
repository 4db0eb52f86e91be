"""Patient: create, read and search within the caller's scope.

The registering institution is always the caller's (never taken from the body).
National ID and phone are shown only to the clinical staff of that institution;
everyone else gets them masked, and the resource carries the security label MASKED.
Only what telemed stores is accepted: one name, gender, birthDate (a full date), at
most one identifier (system NamingSystem/national-id of the namespace) and one phone
in telecom, and a managingOrganization only if it is the caller's institution; other
elements are refused with 422 naming them rather than dropped.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l

from telemed.models.consortium import Patient, Sex
from telemed.services.accounts import patients
from telemed.web.fhir import bp, codes
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import SearchError, parse_search, searchset
from telemed.web.fhir.wire import (
    Element,
    element_paths,
    invalid,
    location_of,
    meta,
    numeric_id,
    parse_reference,
    read_resource,
    relocate,
    resource_response,
)
from telemed.web.idempotency import idempotent
from telemed.web.security import current_actor

CJK = re.compile(r"[\u3400-\u9fff]")
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ACCEPTED_ELEMENTS = {
    "resourceType",
    "id",  # ignored on create, as FHIR asks
    "meta",
    "text",
    "active",
    "name",
    "gender",
    "birthDate",
    "identifier",
    "telecom",
    "managingOrganization",  # only the caller's own institution
}

RESOURCE = register(
    ResourceDefinition(
        type="Patient",
        interactions=("read", "search-type", "create"),
        documentation="Patients in the caller's scope: their own institution's for grassroots "
        "doctors and the registrar, those booked on their slots for specialists, the "
        "consortium's for admins. Created patients belong to the caller's institution. "
        "Creates honour Idempotency-Key.",
        search_params=(
            SearchParam(
                "name",
                "string",
                "Name: starts with the value, or a word of it does.",
                modifiers=("contains", "exact"),
            ),
            SearchParam(
                "identifier",
                "token",
                f"National ID ({codes.NATIONAL_ID.in_docs}|<id>), one at a time; finds only "
                "patients whose identifiers the caller may see.",
            ),
        ),
    )
)


def patient_resource(actor, patient: Patient) -> dict[str, Any]:
    view = patients.view_of(actor, patient)
    masked = view.identifiers_masked and bool(patient.national_id or patient.phone)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "meta": meta(
            patient.created_at,
            security=[codes.coding(codes.OBSERVATION_VALUE, "MASKED", "masked")] if masked else [],
        ),
        "active": True,
    }
    if view.national_id:
        resource["identifier"] = [
            {"use": "official", "system": codes.NATIONAL_ID.url, "value": view.national_id}
        ]
    resource["name"] = [{"text": view.name}]
    if view.phone:
        resource["telecom"] = [{"system": "phone", "value": view.phone}]
    resource["gender"] = view.sex
    if view.birth_date:
        resource["birthDate"] = view.birth_date.isoformat()
    resource["managingOrganization"] = {
        "reference": f"Organization/{patient.institution_id}",
        "display": patient.institution.name,
    }
    return resource


def reference(patient: Patient) -> dict[str, str]:
    return {"reference": f"Patient/{patient.id}", "display": patient.name}


# -- create --------------------------------------------------------------------------------


def _one(body: Element, name: str) -> Element | None:
    items = body.items(name)
    if len(items) > 1:
        raise invalid(items[1].path, _l("only one %(name)s is stored", name=name))
    return items[0] if items else None


def _name(body: Element) -> tuple[str, str]:
    human = _one(body, "name")
    if human is None:
        raise invalid("Patient.name", _l("is required"))
    text = human.text("text")
    if text is not None:
        return text.strip(), human.path
    family = human.text("family") or ""
    given = [g.string() for g in human.items("given")]
    if not family and not given:
        raise invalid(human.path, _l("needs text, or family and given"))
    parts = [family, *given] if family else given
    # Family name first, as Chinese names are written; no spaces between Han characters.
    joiner = "" if all(CJK.search(p) for p in parts) else " "
    return joiner.join(p.strip() for p in parts), human.path


def _birth_date(body: Element) -> date | None:
    found = body.get("birthDate")
    if found is None:
        return None
    value = found.string()
    if not DATE_ONLY.match(value):
        raise invalid(found.path, _l("must be a full date, YYYY-MM-DD"))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(
            found.path, _l("%(value)s is not a calendar date", value=repr(value))
        ) from None


def _national_id(body: Element) -> tuple[str | None, str]:
    identifier = _one(body, "identifier")
    if identifier is None:
        return None, "Patient.identifier"
    system = identifier.require("system")
    if system.string() != codes.NATIONAL_ID.url:
        raise invalid(
            system.path, _l("only %(system)s identifiers are stored", system=codes.NATIONAL_ID.url)
        )
    value = identifier.require("value")
    return value.string(max_length=18), value.path


def _phone(body: Element) -> tuple[str | None, str]:
    telecom = _one(body, "telecom")
    if telecom is None:
        return None, "Patient.telecom"
    system = telecom.require("system")
    if system.string() != "phone":
        raise invalid(system.path, _l("only a phone number is stored"))
    value = telecom.require("value")
    return value.string(max_length=20), value.path


@bp.post("/Patient")
@idempotent(on_replay=relocate)
def create_patient():
    actor = current_actor()
    body = read_resource("Patient")
    body.only(ACCEPTED_ELEMENTS, "is not stored by this server; leave it out")
    active = body.get("active")
    if active is not None and active.value is not True:
        raise invalid(active.path, _l("must be true: inactive patients are not registered"))
    organization = body.get("managingOrganization")
    if organization is not None:
        ref = organization.require("reference")
        _kind, ident = parse_reference(ref.string(), ("Organization",), ref.path)
        if ident != str(actor.institution_id):
            raise invalid(
                ref.path,
                _l(
                    "must be %(organization)s: patients are registered by the signed-in user's "
                    "institution",
                    organization=f"Organization/{actor.institution_id}",
                ),
            )
    name, name_path = _name(body)
    gender = body.get("gender")
    sex = gender.string() if gender is not None else Sex.UNKNOWN.value
    national_id, national_id_path = _national_id(body)
    phone, phone_path = _phone(body)
    with element_paths(
        {
            "name": name_path,
            "sex": "Patient.gender",
            "birth_date": "Patient.birthDate",
            "national_id": national_id_path,
            "phone": phone_path,
        }
    ):
        patient = patients.register_patient(
            actor,
            name=name,
            sex=sex,
            birth_date=_birth_date(body),
            national_id=national_id,
            phone=phone,
        )
    return resource_response(
        patient_resource(actor, patient), 201, location=location_of("Patient", patient.id)
    )


# -- read, search ----------------------------------------------------------------------------


@bp.get("/Patient/<resource_id>")
def read_patient(resource_id: str):
    actor = current_actor()
    patient = patients.read_patient(actor, numeric_id(resource_id, "Patient"))
    return resource_response(patient_resource(actor, patient))


@bp.get("/Patient")
def search_patients():
    actor = current_actor()
    search = parse_search(RESOURCE)
    name = search.string("name")
    national_ids = search.plain_codes("identifier", codes.NATIONAL_ID.url)
    if national_ids is not None and len(national_ids) > 1:
        raise SearchError(_l("identifier: give one national ID at a time"), field="identifier")
    if national_ids == []:
        total, rows = 0, []  # only identifiers of another system were asked for
    else:
        total, rows = patients.find_patients(
            actor,
            name=name.value if name else None,
            name_match=name.match if name else "prefix",
            national_id=national_ids[0] if national_ids else None,
            limit=search.count,
            offset=search.offset,
        )
    return resource_response(searchset(search, total, [patient_resource(actor, p) for p in rows]))
