"""Which representation of a stored instance or of its frames a DICOMweb client gets, from
its ``Accept`` header (PS3.18 8.7: media types, transfer syntaxes, defaults).

Plain rules on plain values: the web layer parses nothing itself and answers 406 when
these find no acceptable representation. Nothing is ever compressed here: a compressed
syntax is served only when it is the stored one; Explicit VR Little Endian is served when
the pixel data can be decoded (or needs no decoding), and keeps every UID.
"""

from __future__ import annotations

from dataclasses import dataclass

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_BIG = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT = "1.2.840.10008.1.2.1.99"
NATIVE_SYNTAXES = frozenset({EXPLICIT_LITTLE, IMPLICIT_LITTLE, EXPLICIT_BIG, DEFLATED_EXPLICIT})
# PS3.18 8.7.3.5.2: these two are not used on the web; asked for "any syntax" (or the
# default), such a file is sent as Explicit VR Little Endian.
NOT_FOR_THE_WEB = frozenset({IMPLICIT_LITTLE, EXPLICIT_BIG})
OCTET_STREAM = "application/octet-stream"
DICOM = "application/dicom"

# PS3.18 Table 8.7.3-5: the media type of a compressed frame, per stored syntax.
FRAME_MEDIA = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
# Older names clients still send.
MEDIA_ALIASES = {"image/x-dicom-rle": "image/dicom-rle", "image/x-jls": "image/jls"}
ANY = frozenset({"*/*", "multipart/*", "multipart/related"})
RENDERED_MEDIA = ("image/jpeg", "image/png", "image/gif")
JSON_MEDIA = ("application/dicom+json", "application/json")


@dataclass(frozen=True)
class Accepted:
    """One item of an Accept header: the media type of the content (a multipart's
    ``type``), whether it was asked as multipart, its transfer-syntax and quality."""

    media: str
    multipart: bool
    syntax: str | None
    quality: float


def parse_accept(header: str | None) -> list[Accepted]:
    """The items of ``header``, best first; q=0 items dropped. No header: ``*/*``."""
    items: list[tuple[float, int, Accepted]] = []
    for position, raw in enumerate((header or "*/*").split(",")):
        pieces = [p.strip() for p in raw.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality <= 0:
            continue
        multipart = media == "multipart/related"
        content = params.get("type", "*/*").lower() if multipart else media
        content = MEDIA_ALIASES.get(content, content)
        syntax = params.get("transfer-syntax")
        items.append((-quality, position, Accepted(content, multipart, syntax, quality)))
    return [item for _q, _p, item in sorted(items, key=lambda x: (x[0], x[1]))]


@dataclass(frozen=True)
class InstanceChoice:
    syntax: str  # what the client gets: the stored syntax or Explicit VR Little Endian
    single_part: bool  # a bare application/dicom body was asked for


def choose_instance_syntax(
    accepted: list[Accepted], stored: str, decodable: bool
) -> InstanceChoice | None:
    """The syntax to send a stored instance in, or None (406). ``decodable``: its pixel
    data, if any, can be decoded here (native data always can be given as ELE)."""
    can_give_plain = decodable or stored in NATIVE_SYNTAXES
    for item in accepted:
        if item.media not in (DICOM, "*/*", "application/*"):
            continue
        single = not item.multipart and item.media == DICOM
        wanted = item.syntax
        if wanted == "*":
            if stored not in NOT_FOR_THE_WEB:
                return InstanceChoice(stored, single)
            wanted = EXPLICIT_LITTLE
        wanted = wanted or EXPLICIT_LITTLE
        if wanted == stored:
            return InstanceChoice(stored, single)
        if wanted == EXPLICIT_LITTLE and can_give_plain:
            return InstanceChoice(EXPLICIT_LITTLE, single)
    return None


@dataclass(frozen=True)
class FrameChoice:
    native: bool  # decoded/uncompressed (ELE layout) rather than the stored bytes
    part_media: str  # Content-Type of each part (without parameters)
    syntax: str  # transfer-syntax parameter of each part
    single_part: bool


def choose_frame_form(accepted: list[Accepted], stored: str, decodable: bool) -> FrameChoice | None:
    """How to send frames (or pixel bulk data) of a stored instance, or None (406)."""
    stored_native = stored in NATIVE_SYNTAXES
    can_give_plain = decodable or stored_native
    for item in accepted:
        single = not item.multipart
        if item.media in ("*/*", OCTET_STREAM, "application/*"):
            wanted = item.syntax or EXPLICIT_LITTLE
            if wanted == "*" or wanted == stored:
                if stored_native:
                    return FrameChoice(True, OCTET_STREAM, EXPLICIT_LITTLE, single)
                return FrameChoice(False, OCTET_STREAM, stored, single)
            if wanted == EXPLICIT_LITTLE and can_give_plain:
                return FrameChoice(True, OCTET_STREAM, EXPLICIT_LITTLE, single)
            continue
        family = FRAME_MEDIA.get(stored)
        if family is not None and item.media == family and item.syntax in (None, "*", stored):
            return FrameChoice(False, family, stored, single)
    return None


def choose_media(accepted: list[Accepted], offered: tuple[str, ...]) -> str | None:
    """The first of ``offered`` the client accepts (in its order of preference), else
    None; a wildcard takes the first offered."""
    for item in accepted:
        if item.multipart:
            continue
        if item.media in offered:
            return item.media
        if item.media.endswith("/*"):
            prefix = item.media[:-1] if item.media != "*/*" else ""
            for media in offered:
                if media.startswith(prefix):
                    return media
    return None
