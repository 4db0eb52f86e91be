"""Which FHIR resources this server offers, with their interactions and search parameters.

Each resource module registers one :class:`ResourceDefinition`. Its searches are
parsed against that definition (web/fhir/search.py) and /fhir/metadata is built from
the registry, so the CapabilityStatement lists exactly what is implemented. A new
resource (ServiceRequest, DiagnosticReport, ...) is a new module that calls
:func:`register` and adds its routes to the blueprint, plus its name in
``RESOURCE_MODULES`` (web/fhir/__init__.py).
"""

from __future__ import annotations

from dataclasses import dataclass

# FHIR search parameter types this server parses (web/fhir/search.py).
SEARCH_TYPES = frozenset({"string", "token", "reference", "date"})
INTERACTIONS = frozenset({"read", "vread", "search-type", "create", "update", "patch"})
# CapabilityStatement.rest.resource.versioning: versioned resources carry meta.versionId
# and a weak ETag; versioned-update ones also refuse an If-Match of another version.
VERSIONING = frozenset({"no-version", "versioned", "versioned-update"})


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str
    documentation: str
    modifiers: tuple[str, ...] = ()
    # Resource types a reference parameter may point to.
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in SEARCH_TYPES:
            raise ValueError(f"unsupported search parameter type {self.type!r}")
        if self.type == "reference" and not self.targets:
            raise ValueError(f"reference parameter {self.name!r} needs its targets")


@dataclass(frozen=True)
class ResourceDefinition:
    type: str
    interactions: tuple[str, ...]
    search_params: tuple[SearchParam, ...] = ()
    documentation: str = ""
    versioning: str = "no-version"

    def __post_init__(self) -> None:
        unknown = set(self.interactions) - INTERACTIONS
        if unknown:
            raise ValueError(f"unsupported interactions {sorted(unknown)}")
        if self.versioning not in VERSIONING:
            raise ValueError(f"unsupported versioning {self.versioning!r}")
        if ("vread" in self.interactions) != (self.versioning != "no-version"):
            raise ValueError(f"{self.type}: a versioned resource offers vread, and only it")
        if self.versioning == "versioned-update" and not {"update", "patch"} & set(
            self.interactions
        ):
            raise ValueError(f"{self.type}: versioned-update needs update or patch")

    def param(self, name: str) -> SearchParam | None:
        for param in self.search_params:
            if param.name == name:
                return param
        return None


_registry: dict[str, ResourceDefinition] = {}


def register(definition: ResourceDefinition) -> ResourceDefinition:
    existing = _registry.get(definition.type)
    if existing is not None and existing != definition:
        raise ValueError(f"{definition.type} is registered twice")
    _registry[definition.type] = definition
    return definition


def definitions() -> list[ResourceDefinition]:
    return sorted(_registry.values(), key=lambda d: d.type)
