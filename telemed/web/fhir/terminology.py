"""Each URL of telemed's namespace, described where it points.

``GET /fhir/CodeSystem/<name>`` answers a CodeSystem (every code, or ``not-present``
where the codes are the consortium's data), ``/fhir/NamingSystem/<name>`` a
NamingSystem for an identifier system and ``/fhir/StructureDefinition/<name>`` the
definition of an extension; a browser asking for HTML gets a page instead. The
searches list them all. They are public, like /fhir/metadata: vocabulary, no patient
data. With ``TELEMED_FHIR_NAMESPACE`` set to this server's public FHIR base, every
system and extension URL in telemed's resources resolves to one of these.
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask_babel import lazy_gettext as _l

from telemed.errors import NotFound
from telemed.web.fhir import bp, codes
from telemed.web.fhir.namespace import CODE_SYSTEM, EXTENSION, NAMING_SYSTEM, Term
from telemed.web.fhir.registry import ResourceDefinition, register
from telemed.web.fhir.search import Search, parse_search, searchset
from telemed.web.fhir.wire import FHIR_JSON, PLAIN_JSON, resource_response

PUBLISHER = "telemed"
# When the vocabulary was last revised; a change of codes or meaning moves it.
VOCABULARY_DATE = "2026-12-07"
FHIR_EXTENSION = "http://hl7.org/fhir/StructureDefinition/Extension"

DEFINITIONS = {
    kind: register(
        ResourceDefinition(
            type=kind,
            interactions=("read", "search-type"),
            documentation=documentation + " Public: no sign-in needed.",
        )
    )
    for kind, documentation in (
        (CODE_SYSTEM, "telemed's code systems, at <namespace>/CodeSystem/<name>."),
        (NAMING_SYSTEM, "telemed's identifier systems, at <namespace>/NamingSystem/<name>."),
        (EXTENSION, "telemed's extensions, at <namespace>/StructureDefinition/<name>."),
    )
}


def _common(term: Term, resource_type: str) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "id": term.name,
        "name": term.computable_name,
        "status": "active",
        "date": VOCABULARY_DATE,
        "publisher": PUBLISHER,
        "description": term.description,
    }


def code_system_resource(term: Term) -> dict[str, Any]:
    resource = _common(term, "CodeSystem")
    resource.update({"url": term.url, "title": term.title, "caseSensitive": True})
    if term.concepts is None:
        resource["content"] = "not-present"
    else:
        resource["content"] = "complete"
        resource["count"] = len(term.concepts)
        resource["concept"] = [{"code": code, "display": shown} for code, shown in term.concepts]
    return resource


def naming_system_resource(term: Term) -> dict[str, Any]:
    resource = _common(term, "NamingSystem")
    resource.update(
        {
            "kind": "identifier",
            "uniqueId": [{"type": "uri", "value": term.url, "preferred": True}],
        }
    )
    return resource


def extension_resource(term: Term) -> dict[str, Any]:
    resource = _common(term, "StructureDefinition")
    resource.update(
        {
            "url": term.url,
            "title": term.title,
            "fhirVersion": "4.0.1",
            "kind": "complex-type",
            "abstract": False,
            "context": [{"type": "element", "expression": where} for where in term.context],
            "type": "Extension",
            "baseDefinition": FHIR_EXTENSION,
            "derivation": "constraint",
            "differential": {
                "element": [
                    {
                        "id": "Extension",
                        "path": "Extension",
                        "short": term.title,
                        "definition": term.description,
                        "min": 0,
                        "max": "1",
                    },
                    {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                    {"id": "Extension.url", "path": "Extension.url", "fixedUri": term.url},
                    {
                        "id": "Extension.value[x]",
                        "path": "Extension.value[x]",
                        "min": 1,
                        "type": [{"code": term.value_type}],
                    },
                ]
            },
        }
    )
    return resource


RESOURCE_OF = {
    CODE_SYSTEM: code_system_resource,
    NAMING_SYSTEM: naming_system_resource,
    EXTENSION: extension_resource,
}


def _wants_html() -> bool:
    accept = request.accept_mimetypes
    return request.args.get("_format") is None and accept.quality("text/html") > max(
        accept.quality(FHIR_JSON), accept.quality(PLAIN_JSON)
    )


def _read(kind: str, resource_id: str):
    term = codes.term(kind, resource_id)
    if term is None:
        known = ", ".join(t.name for t in codes.terms(kind))
        raise NotFound(
            _l(
                "%(resource)s not found; this server defines %(known)s",
                resource=f"{kind}/{resource_id}",
                known=known,
            )
        )
    if _wants_html():
        return render_template("fhir/term.html", term=term, kind=kind)
    return resource_response(RESOURCE_OF[kind](term))


def _search(kind: str):
    search: Search = parse_search(DEFINITIONS[kind])
    found = codes.terms(kind)
    shown = found[search.offset : search.offset + search.count]
    return resource_response(searchset(search, len(found), [RESOURCE_OF[kind](t) for t in shown]))


@bp.get("/CodeSystem/<resource_id>", endpoint="code_system")
def read_code_system(resource_id: str):
    return _read(CODE_SYSTEM, resource_id)


@bp.get("/NamingSystem/<resource_id>", endpoint="naming_system")
def read_naming_system(resource_id: str):
    return _read(NAMING_SYSTEM, resource_id)


@bp.get("/StructureDefinition/<resource_id>", endpoint="extension")
def read_extension(resource_id: str):
    return _read(EXTENSION, resource_id)


@bp.get("/CodeSystem", endpoint="code_systems")
def search_code_systems():
    return _search(CODE_SYSTEM)


@bp.get("/NamingSystem", endpoint="naming_systems")
def search_naming_systems():
    return _search(NAMING_SYSTEM)


@bp.get("/StructureDefinition", endpoint="extensions")
def search_extensions():
    return _search(EXTENSION)
