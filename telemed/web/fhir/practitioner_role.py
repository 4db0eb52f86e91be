"""PractitionerRole: one per user (same id as the Practitioner): the institution, the
department as specialty, and the telemed role as code (read, search)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from telemed.models.consortium import Department, Role, User
from telemed.services.accounts import scopes
from telemed.web.fhir import bp, codes, organization, practitioner
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import page, parse_search, searchset
from telemed.web.fhir.wire import meta, numeric_id, resource_response
from telemed.web.security import current_actor

ROLES = {role.value: role for role in Role}

RESOURCE = register(
    ResourceDefinition(
        type="PractitionerRole",
        interactions=("read", "search-type"),
        documentation="Each user's place: organization (institution), specialty (department) "
        "and code (telemed role). Its id is the user's Practitioner id.",
        search_params=(
            SearchParam(
                "practitioner", "reference", "Practitioner/<id>.", targets=("Practitioner",)
            ),
            SearchParam(
                "organization", "reference", "Organization/<id>.", targets=("Organization",)
            ),
            SearchParam(
                "specialty", "token", f"Department code ({codes.DEPARTMENT.in_docs}|<code>)."
            ),
            SearchParam(
                "role", "token", f"telemed role ({codes.ROLE.in_docs}): " + ", ".join(ROLES) + "."
            ),
        ),
    )
)


def practitioner_role_resource(user: User) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": str(user.id),
        "meta": meta(user.created_at),
        "active": user.is_enabled,
        "practitioner": practitioner.reference(user),
        "organization": organization.reference(user.institution),
        "code": [codes.role_concept(user.role)],
    }
    if user.department is not None:
        resource["specialty"] = [codes.department_concept(user.department)]
    return resource


@bp.get("/PractitionerRole")
def search_practitioner_roles():
    search = parse_search(RESOURCE)
    query = scopes.users_visible_to(current_actor()).options(
        selectinload(User.institution), selectinload(User.department)
    )
    for name, column in (("practitioner", User.id), ("organization", User.institution_id)):
        ids = search.ids(name)
        if ids is not None:
            query = query.where(column.in_(ids))
    departments = search.plain_codes("specialty", codes.DEPARTMENT.url)
    if departments is not None:
        query = query.where(
            User.department_id.in_(select(Department.id).where(Department.code.in_(departments)))
        )
    roles = search.codes("role", codes.ROLE.url, ROLES)
    if roles is not None:
        query = query.where(User.role.in_(roles))
    total, rows = page(query, search, User.id)
    return resource_response(
        searchset(search, total, [practitioner_role_resource(u) for u in rows])
    )


@bp.get("/PractitionerRole/<resource_id>")
def read_practitioner_role(resource_id: str):
    user = scopes.get_user(current_actor(), numeric_id(resource_id, "PractitionerRole"))
    return resource_response(practitioner_role_resource(user))
