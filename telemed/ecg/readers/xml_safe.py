"""Parsing ECG XML exports without trusting them.

Carts put a document type declaration at the top of their exports (GE MUSE:
``<!DOCTYPE RestingECG SYSTEM "restecg.dtd">``), so a DOCTYPE is accepted; the DTD it
points to is never fetched, and any entity declaration (billion laughs, external
entities) or external reference is refused by defusedxml before expansion.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree
from flask_babel import gettext as _

from telemed.ecg.errors import EcgFileError
from telemed.ecg.readers._checks import checked_size
from telemed.ecg.signal import EcgLimits


def parse_xml(name: str, path: Path, limits: EcgLimits) -> Element:
    """The root element of an XML file within the XML size limit; refuses unsafe XML."""
    size = checked_size(name, path, limits)
    if size > limits.max_xml_bytes:
        raise EcgFileError(
            name,
            _(
                "an ECG XML file of %(size)d bytes is over the limit of %(limit)d bytes",
                size=size,
                limit=limits.max_xml_bytes,
            ),
        )
    try:
        return defusedxml.ElementTree.parse(
            str(path), forbid_dtd=False, forbid_entities=True, forbid_external=True
        ).getroot()
    except defusedxml.EntitiesForbidden:
        reason = _("XML entity declarations are not accepted")
    except defusedxml.ExternalReferenceForbidden:
        reason = _("XML external references are not accepted")
    except defusedxml.DefusedXmlException as error:
        reason = _("unsafe XML refused: %(what)s", what=type(error).__name__)
    except ParseError as error:
        reason = _("not well-formed XML (%(detail)s)", detail=str(error))
    except OSError:
        reason = _("the file is missing or unreadable")
    raise EcgFileError(name, reason)


def local_name(element: Element) -> str:
    """The tag without its namespace."""
    return element.tag.rsplit("}", 1)[-1]


def child_text(parent: Element | None, *path: str) -> str | None:
    """The stripped text at ``path`` below ``parent`` (namespaces ignored), or None."""
    node = parent
    for step in path:
        if node is None:
            return None
        node = next((c for c in node if local_name(c) == step), None)
    if node is None or node.text is None:
        return None
    text = node.text.strip()
    return text or None


def find_child(parent: Element | None, name: str) -> Element | None:
    if parent is None:
        return None
    return next((c for c in parent if local_name(c) == name), None)


def find_all(parent: Element | None, name: str) -> list[Element]:
    if parent is None:
        return []
    return [c for c in parent if local_name(c) == name]


def find_deep(root: Element, name: str) -> Element | None:
    return next((e for e in root.iter() if local_name(e) == name), None)
