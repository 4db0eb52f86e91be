"""One base for every URL telemed mints: code systems, identifier systems, extensions.

A consortium owns its namespace: ``TELEMED_FHIR_NAMESPACE`` (default
``https://telemed.example.org/fhir``) is the base, and each term's URL is
``<base>/CodeSystem/<name>``, ``<base>/NamingSystem/<name>`` (identifier systems) or
``<base>/StructureDefinition/<name>`` (extensions). Set to this server's public FHIR
base, every such URL resolves here (web/fhir/terminology.py describes each one).
URLs are built per request, so the setting is read where it is in force.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

DEFAULT_NAMESPACE = "https://telemed.example.org/fhir"
CODE_SYSTEM = "CodeSystem"
NAMING_SYSTEM = "NamingSystem"
EXTENSION = "StructureDefinition"
KINDS = (CODE_SYSTEM, NAMING_SYSTEM, EXTENSION)
NAMESPACE_MARK = "{ns}"


def namespace() -> str:
    return (current_app.config.get("TELEMED_FHIR_NAMESPACE") or DEFAULT_NAMESPACE).rstrip("/")


def with_namespace(text: str) -> str:
    """Documentation text with its ``{ns}`` marks replaced by the namespace in force."""
    return text.replace(NAMESPACE_MARK, namespace())


@dataclass(frozen=True)
class Term:
    """A code system, identifier system or extension of telemed's namespace."""

    kind: str
    name: str
    title: str
    description: str
    # Code systems: (code, display) of every concept; None when the codes are data
    # (department codes belong to each consortium).
    concepts: tuple[tuple[str, str], ...] | None = None
    # Extensions: the value[x] type and the resources they appear on.
    value_type: str | None = None
    context: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        if self.kind == EXTENSION and (self.value_type is None or not self.context):
            raise ValueError(f"extension {self.name!r} needs its value type and context")

    @property
    def url(self) -> str:
        return f"{namespace()}/{self.kind}/{self.name}"

    @property
    def in_docs(self) -> str:
        """The URL in documentation written before any request: ``{ns}`` stands for the
        namespace, filled in where the text is served (the CapabilityStatement)."""
        return f"{NAMESPACE_MARK}/{self.kind}/{self.name}"

    @property
    def computable_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))


_terms: dict[tuple[str, str], Term] = {}


def define(term: Term) -> Term:
    if _terms.setdefault((term.kind, term.name), term) != term:
        raise ValueError(f"{term.kind}/{term.name} is defined twice")
    return term


def terms(kind: str) -> list[Term]:
    return sorted((t for (k, _n), t in _terms.items() if k == kind), key=lambda t: t.name)


def find(kind: str, name: str) -> Term | None:
    return _terms.get((kind, name))
