"""Organization: the institutions of the caller's consortium (read, search)."""

from __future__ import annotations

from typing import Any

from telemed.models.consortium import Institution, InstitutionKind
from telemed.services.accounts import scopes
from telemed.web.fhir import bp, codes
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import page, parse_search, searchset, string_condition
from telemed.web.fhir.wire import meta, numeric_id, resource_response
from telemed.web.security import current_actor

KINDS = {kind.value: kind for kind in InstitutionKind}

RESOURCE = register(
    ResourceDefinition(
        type="Organization",
        interactions=("read", "search-type"),
        documentation="The institutions of the caller's consortium: the lead hospital and "
        "its member institutions.",
        search_params=(
            SearchParam(
                "name",
                "string",
                "Name (Chinese or English): starts with the value, or a word of it does.",
                modifiers=("contains", "exact"),
            ),
            SearchParam(
                "type",
                "token",
                f"Institution kind ({codes.INSTITUTION_KIND.in_docs}): "
                + ", ".join(KINDS)
                + f"; {codes.ORGANIZATION_TYPE}|prov matches all.",
            ),
            SearchParam(
                "identifier",
                "token",
                f"Institution code ({codes.INSTITUTION_CODE.in_docs}|<code>).",
            ),
        ),
    )
)


def organization_resource(institution: Institution) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": str(institution.id),
        "meta": meta(institution.created_at),
        "identifier": [{"system": codes.INSTITUTION_CODE.url, "value": institution.code}],
        "active": True,
        "type": [codes.institution_kind_concept(institution.kind)],
        "name": institution.name,
    }
    if institution.name_en:
        resource["alias"] = [institution.name_en]
    return resource


def reference(institution: Institution) -> dict[str, str]:
    return {"reference": f"Organization/{institution.id}", "display": institution.name}


@bp.get("/Organization")
def search_organizations():
    search = parse_search(RESOURCE)
    query = scopes.institutions_visible_to(current_actor())
    name = search.string("name")
    if name is not None:
        query = query.where(string_condition(name, Institution.name, Institution.name_en))
    tokens = search.tokens("type")
    if tokens is not None:
        kinds = set(search.codes("type", codes.INSTITUTION_KIND.url, KINDS) or ())
        if any(t.system == codes.ORGANIZATION_TYPE and t.code in (None, "prov") for t in tokens):
            kinds = set(InstitutionKind)
        query = query.where(Institution.kind.in_(sorted(kinds)))
    institution_codes = search.plain_codes("identifier", codes.INSTITUTION_CODE.url)
    if institution_codes is not None:
        query = query.where(Institution.code.in_(institution_codes))
    total, rows = page(query, search, Institution.id)
    return resource_response(searchset(search, total, [organization_resource(i) for i in rows]))


@bp.get("/Organization/<resource_id>")
def read_organization(resource_id: str):
    institution = scopes.get_institution(current_actor(), numeric_id(resource_id, "Organization"))
    return resource_response(organization_resource(institution))
