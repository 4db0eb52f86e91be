"""Practitioner: the users of the caller's consortium (read, search)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import selectinload

from telemed.labels import label
from telemed.models.consortium import User
from telemed.services.accounts import scopes
from telemed.web.fhir import bp, codes
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import page, parse_search, searchset, string_condition
from telemed.web.fhir.wire import meta, numeric_id, resource_response
from telemed.web.security import current_actor

RESOURCE = register(
    ResourceDefinition(
        type="Practitioner",
        interactions=("read", "search-type"),
        documentation="Every user of the caller's consortium; what they do and where is "
        "their PractitionerRole (same id).",
        search_params=(
            SearchParam(
                "name",
                "string",
                "Display name or username: starts with the value, or a word of it does.",
                modifiers=("contains", "exact"),
            ),
            SearchParam("identifier", "token", f"Username ({codes.USERNAME.in_docs}|<username>)."),
        ),
    )
)


def practitioner_resource(user: User) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": str(user.id),
        "meta": meta(user.created_at),
        "identifier": [{"system": codes.USERNAME.url, "value": user.username}],
        "active": user.is_enabled,
        "name": [{"text": user.display_name}],
    }
    if user.title:
        resource["qualification"] = [{"code": {"text": label(user.title)}}]
    return resource


def reference(user: User) -> dict[str, str]:
    return {"reference": f"Practitioner/{user.id}", "display": user.display_name}


@bp.get("/Practitioner")
def search_practitioners():
    search = parse_search(RESOURCE)
    query = scopes.users_visible_to(current_actor()).options(selectinload(User.institution))
    name = search.string("name")
    if name is not None:
        query = query.where(string_condition(name, User.display_name, User.username))
    usernames = search.plain_codes("identifier", codes.USERNAME.url)
    if usernames is not None:
        query = query.where(User.username.in_(usernames))
    total, rows = page(query, search, User.id)
    return resource_response(searchset(search, total, [practitioner_resource(u) for u in rows]))


@bp.get("/Practitioner/<resource_id>")
def read_practitioner(resource_id: str):
    user = scopes.get_user(current_actor(), numeric_id(resource_id, "Practitioner"))
    return resource_response(practitioner_resource(user))
