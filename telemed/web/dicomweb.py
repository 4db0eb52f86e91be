"""DICOMweb per case at ``/cases/<id>/dicomweb``: STOW-RS, QIDO-RS and WADO-RS (PS3.18).

The case's access rules apply to every call (another institution's case is a 404, as if
it did not exist); bearer tokens and login sessions both work; every retrieval of a file
(instance, frames, bulk data, metadata, rendered frame) is audited. Stored objects are
streamed from the content store; transcoded copies, frames, bulk values and renders from
their caches, made by the workers. Which representation a client gets is decided by
``domain.dicomweb_media``; QIDO's parameters and matching by ``domain.qido_matching``.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import defer

from telemed.db import set_write_intent
from telemed.domain import qido_matching
from telemed.domain.dicomweb_media import (
    JSON_MEDIA,
    NATIVE_SYNTAXES,
    OCTET_STREAM,
    RENDERED_MEDIA,
    Accepted,
    FrameChoice,
    choose_frame_form,
    choose_instance_syntax,
    choose_media,
    parse_accept,
)
from telemed.domain.qido_matching import (
    COMPUTED,
    BadQuery,
    Key,
    Query,
    parse_query,
    value_matches,
)
from telemed.errors import Conflict, InvalidInput, NotFound, TelemedError
from telemed.extensions import db
from telemed.imaging.dicom_json import BULK_DATA_MARK
from telemed.imaging.rendering import parse_window
from telemed.models.case_files import DicomInstance
from telemed.models.cases import Case
from telemed.services.cases import dicom
from telemed.services.cases.cases import get_case
from telemed.web.file_reasons import (
    OTHER_STUDY,
    PART_NO_HEADERS,
    PART_NOT_DICOM,
    PART_UNCLOSED,
    file_reason,
)
from telemed.web.security import current_actor

bp = Blueprint("dicomweb", __name__, url_prefix="/cases/<int:case_id>/dicomweb")

DICOM_JSON = "application/dicom+json"
PIXEL_DATA = "7FE00010"
CHUNK = 1024 * 1024
FAILURE_PROCESSING = 0xC000
ERROR_COMMENT = "00000902"
# A STOW-RS body up to this size is read into memory; a larger one is spooled to a file.
BODY_IN_MEMORY = 16 * 1024**2


class NotAcceptable(TelemedError):
    status = 406
    code = "not_acceptable"


class BadRequest(TelemedError):
    status = 400
    code = "bad_request"


class UnsupportedMediaType(TelemedError):
    status = 415
    code = "unsupported_media_type"


def _case(case_id: int) -> Case:
    return get_case(current_actor(), case_id)


def _root(case_id: int) -> str:
    return f"{request.host_url.rstrip('/')}/cases/{case_id}/dicomweb"


# -- DICOM JSON helpers -----------------------------------------------------------------------


def _attr(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def _from_header(header: dict[str, Any], tag: str, vr: str) -> dict[str, Any]:
    return header.get(tag) or {"vr": vr}


def _da(value: date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None


def _url(case_id: int, study: str, series: str | None = None, sop: str | None = None) -> str:
    url = f"{_root(case_id)}/studies/{study}"
    if series:
        url += f"/series/{series}"
    if sop:
        url += f"/instances/{sop}"
    return url


def study_attributes(
    case_id: int, instances: list[DicomInstance], header: dict[str, Any]
) -> dict[str, Any]:
    """PS3.18 Table 10.6.3-3: the study's default attributes (its first instance's header
    for what the index does not hold)."""
    first = instances[0]
    series = {i.series_uid for i in instances}
    modalities = sorted({i.modality for i in instances if i.modality})
    return {
        "00080005": _from_header(header, "00080005", "CS"),
        "00080020": _attr("DA", _da(first.study_date)),
        "00080030": _attr("TM", first.study_time),
        "00080050": _attr("SH", first.accession_number),
        "00080056": _attr("CS", "ONLINE"),
        "00080061": _attr("CS", *modalities),
        "00080090": _from_header(header, "00080090", "PN"),
        "00080201": _from_header(header, "00080201", "SH"),
        "00081030": _attr("LO", first.study_description),
        "00081190": _attr("UR", _url(case_id, first.study_uid)),
        "00100010": _from_header(header, "00100010", "PN"),
        "00100020": _attr("LO", first.header_patient_id),
        "00100030": _from_header(header, "00100030", "DA"),
        "00100040": _from_header(header, "00100040", "CS"),
        "0020000D": _attr("UI", first.study_uid),
        "00200010": _from_header(header, "00200010", "SH"),
        "00201206": _attr("IS", len(series)),
        "00201208": _attr("IS", len(instances)),
    }


def series_attributes(
    case_id: int, instances: list[DicomInstance], header: dict[str, Any]
) -> dict[str, Any]:
    """PS3.18 Table 10.6.3-4: the series' default attributes."""
    first = instances[0]
    attributes = {
        "00080005": _from_header(header, "00080005", "CS"),
        "00080060": _attr("CS", first.modality),
        "00080201": _from_header(header, "00080201", "SH"),
        "0008103E": _attr("LO", first.series_description),
        "00081190": _attr("UR", _url(case_id, first.study_uid, first.series_uid)),
        "00180015": _attr("CS", first.body_part),
        "0020000D": _attr("UI", first.study_uid),
        "0020000E": _attr("UI", first.series_uid),
        "00200011": _attr("IS", first.series_number),
        "00201209": _attr("IS", len(instances)),
        "00400244": _from_header(header, "00400244", "DA"),
        "00400245": _from_header(header, "00400245", "TM"),
    }
    if "00400275" in header:
        attributes["00400275"] = header["00400275"]
    return attributes


def instance_attributes(
    case_id: int, instance: DicomInstance, header: dict[str, Any]
) -> dict[str, Any]:
    """PS3.18 Table 10.6.3-5: the instance's default attributes."""
    return {
        "00020010": _attr("UI", instance.transfer_syntax_uid),
        "00080005": _from_header(header, "00080005", "CS"),
        "00080016": _attr("UI", instance.sop_class_uid),
        "00080018": _attr("UI", instance.sop_instance_uid),
        "00080056": _attr("CS", "ONLINE"),
        "00080060": _attr("CS", instance.modality),
        "00080201": _from_header(header, "00080201", "SH"),
        "00081190": _attr(
            "UR", _url(case_id, instance.study_uid, instance.series_uid, instance.sop_instance_uid)
        ),
        "0020000D": _attr("UI", instance.study_uid),
        "0020000E": _attr("UI", instance.series_uid),
        "00200013": _attr("IS", instance.instance_number),
        "00280008": _attr("IS", instance.number_of_frames if instance.rows else None),
        "00280010": _attr("US", instance.rows),
        "00280011": _attr("US", instance.columns),
        "00280100": _from_header(header, "00280100", "US"),
    }


# -- content negotiation ----------------------------------------------------------------------


def _accepted() -> list[Accepted]:
    """The client's acceptable media types: the ``accept`` query parameter when given
    (PS3.18 8.3.3.1), else the Accept header."""
    return parse_accept(request.args.get("accept") or request.headers.get("Accept"))


def _json_media() -> str:
    media = choose_media(_accepted(), JSON_MEDIA)
    if media is None:
        raise NotAcceptable(
            _l("this resource is served as application/dicom+json only"), field="Accept"
        )
    return media


@bp.after_request
def _challenge(response: Response) -> Response:
    # RFC 9110: a 401 names the scheme the client should use.
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = 'Bearer realm="telemed"'
    return response


# -- QIDO-RS ----------------------------------------------------------------------------------

# Attributes the index holds as columns: matched without loading the stored header.
COLUMN_VALUES: dict[str, Callable[[DicomInstance], list[Any]]] = {
    "0020000D": lambda i: [i.study_uid],
    "0020000E": lambda i: [i.series_uid],
    "00080018": lambda i: [i.sop_instance_uid],
    "00080016": lambda i: [i.sop_class_uid],
    "00080060": lambda i: [i.modality],
    "00080020": lambda i: [_da(i.study_date)],
    "00080030": lambda i: [i.study_time],
    "00080050": lambda i: [i.accession_number],
    "00081030": lambda i: [i.study_description],
    "0008103E": lambda i: [i.series_description],
    "00180015": lambda i: [i.body_part],
    "00100010": lambda i: [i.header_patient_name],
    "00100020": lambda i: [i.header_patient_id],
    "00200011": lambda i: [i.series_number],
    "00200013": lambda i: [i.instance_number],
    "00280008": lambda i: [i.number_of_frames if i.rows else None],
    "00280010": lambda i: [i.rows],
    "00280011": lambda i: [i.columns],
}


# QIDO's refusals (domain/qido_matching.py's templates) in the reader's words.
QUERY_WORDS = {
    qido_matching.IN_SEQUENCE: _l("%(name)s: matching inside sequences is not supported"),
    qido_matching.NOT_ATTRIBUTE: _l("%(name)s is not a DICOM attribute keyword or tag"),
    qido_matching.NOT_WHOLE: _l("%(name)s must be a whole number"),
    qido_matching.TOO_LOW: _l("%(name)s must be at least %(low)s"),
    qido_matching.UNMATCHABLE: _l("%(name)s (%(vr)s) cannot be matched"),
    qido_matching.NOT_RANGE: _l("%(name)s must be a %(vr)s value or a range a-b"),
    qido_matching.BAD_BOUND: _l("%(name)s: %(bound)s is not a valid %(vr)s value"),
    qido_matching.NOT_NUMBER: _l("%(name)s must be a number"),
    qido_matching.UID_WILDCARD: _l(
        "%(name)s: UIDs are matched whole or as a list, not by wildcards"
    ),
    qido_matching.NOT_BOOLEAN: _l("%(name)s must be true or false"),
    qido_matching.TWICE: _l("%(name)s is given twice"),
}


def _query() -> Query:
    try:
        return parse_query(list(request.args.items(multi=True)))
    except BadQuery as error:
        words = QUERY_WORDS.get(error.template)
        message = str(words) % error.values if words is not None else str(error)
        raise BadRequest(message, field=error.field) from None


def _values(instance: DicomInstance, key: Key) -> list[Any]:
    column = COLUMN_VALUES.get(key.tag)
    if column is not None:
        return column(instance)
    return (instance.header_json.get(key.tag) or {}).get("Value") or []


def _matching(case_id: int, query: Query, fixed: dict[str, str]) -> list[DicomInstance]:
    """The case's instances that match every key of ``query`` (and the UIDs of the path)."""
    statement = select(DicomInstance).where(DicomInstance.case_id == case_id)
    for tag, uid in fixed.items():
        column = {
            "0020000D": DicomInstance.study_uid,
            "0020000E": DicomInstance.series_uid,
        }[tag]
        statement = statement.where(column == uid)
    keys = [k for k in query.matching if k.keyword not in COMPUTED]
    if all(k.tag in COLUMN_VALUES for k in keys):
        statement = statement.options(defer(DicomInstance.header_json))  # loaded only if asked
    statement = statement.order_by(
        DicomInstance.study_uid,
        DicomInstance.series_number,
        DicomInstance.series_uid,
        DicomInstance.instance_number,
        DicomInstance.id,
    )
    instances = db.session.execute(statement).scalars()
    return [i for i in instances if all(value_matches(_values(i, k), k, query.fuzzy) for k in keys)]


def _grouped(
    case_id: int, query: Query, fixed: dict[str, str], by: Callable[[DicomInstance], str]
) -> list[list[DicomInstance]]:
    """Studies or series with at least one matching instance, each with all its
    instances (counts and modalities are the whole study's or series', not the matches')."""
    matched = {by(i) for i in _matching(case_id, query, fixed)}
    if not matched:
        return []
    everything = Query(fuzzy=query.fuzzy)
    groups: dict[str, list[DicomInstance]] = defaultdict(list)
    for instance in _matching(case_id, everything, fixed):
        if by(instance) in matched:
            groups[by(instance)].append(instance)
    found = list(groups.values())
    for key in query.matching:
        if key.keyword == "ModalitiesInStudy":
            found = [
                items
                for items in found
                if value_matches(sorted({i.modality for i in items if i.modality}), key, False)
            ]
    return found


def _headers(instances: list[DicomInstance]) -> dict[int, dict[str, Any]]:
    ids = [i.id for i in instances]
    headers: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        rows = db.session.execute(
            select(DicomInstance.id, DicomInstance.header_json).where(
                DicomInstance.id.in_(ids[start : start + 500])
            )
        )
        headers.update((row_id, header or {}) for row_id, header in rows)
    return headers


def _answer(
    query: Query,
    groups: list[Any],
    first: Callable[[Any], DicomInstance],
    attributes: Callable[[Any, dict[str, Any]], dict[str, Any]],
) -> Response:
    """One page of results, each with its default attributes, the keys of the query and
    ``includefield``; a Warning when more results remain (PS3.18 8.3.4.4)."""
    page = groups[query.offset : query.offset + query.limit]
    headers = _headers([first(group) for group in page])
    payload = []
    for group in page:
        header = headers.get(first(group).id, {})
        result = attributes(group, header)
        wanted = [k.tag for k in query.keys] + [t for t in query.include if t != "all"]
        if "all" in query.include:
            wanted += list(header)
        instance = first(group)
        for tag in wanted:
            if tag not in result and tag in header:
                result[tag] = header[tag]
                mark = header[tag].get("BulkDataURI", "")
                if mark.startswith(BULK_DATA_MARK):
                    url = _url(instance.case_id, instance.study_uid, instance.series_uid)
                    result[tag] = {
                        **header[tag],
                        "BulkDataURI": f"{url}/instances/{instance.sop_instance_uid}"
                        f"/bulkdata/{mark[len(BULK_DATA_MARK) :]}",
                    }
        payload.append(result)
    response = jsonify(payload)
    response.mimetype = _json_media()
    if query.offset + query.limit < len(groups):
        response.headers["Warning"] = (
            '299 telemed "There are additional results that can be requested"'
        )
    return response


@bp.route("/studies", methods=["GET"])
@login_required
def search_studies(case_id: int):
    case = _case(case_id)
    _json_media()
    query = _query()
    groups = _grouped(case.id, query, {}, lambda i: i.study_uid)
    return _answer(query, groups, lambda g: g[0], lambda g, h: study_attributes(case.id, g, h))


@bp.route("/series", methods=["GET"])
@bp.route("/studies/<study>/series", methods=["GET"])
@login_required
def search_series(case_id: int, study: str | None = None):
    case = _case(case_id)
    _json_media()
    query = _query()
    fixed = {"0020000D": study} if study else {}
    groups = _grouped(case.id, query, fixed, lambda i: i.series_uid)
    return _answer(query, groups, lambda g: g[0], lambda g, h: series_attributes(case.id, g, h))


@bp.route("/instances", methods=["GET"])
@bp.route("/studies/<study>/instances", methods=["GET"])
@bp.route("/studies/<study>/series/<series>/instances", methods=["GET"])
@login_required
def search_instances(case_id: int, study: str | None = None, series: str | None = None):
    case = _case(case_id)
    _json_media()
    query = _query()
    fixed = {}
    if study:
        fixed["0020000D"] = study
    if series:
        fixed["0020000E"] = series
    found = _matching(case.id, query, fixed)
    return _answer(query, found, lambda i: i, lambda i, h: instance_attributes(case.id, i, h))


# -- WADO-RS ----------------------------------------------------------------------------------


def _select(case_id: int, study: str, series: str | None, sop: str | None) -> list[DicomInstance]:
    query = select(DicomInstance).where(
        DicomInstance.case_id == case_id, DicomInstance.study_uid == study
    )
    if series:
        query = query.where(DicomInstance.series_uid == series)
    if sop:
        query = query.where(DicomInstance.sop_instance_uid == sop)
    found = list(
        db.session.execute(
            query.options(defer(DicomInstance.header_json)).order_by(
                DicomInstance.series_number,
                DicomInstance.series_uid,
                DicomInstance.instance_number,
                DicomInstance.id,
            )
        ).scalars()
    )
    if not found:
        raise _not_found(study, series, sop)
    return found


def _not_found(study: str, series: str | None, sop: str | None) -> NotFound:
    if sop:
        return NotFound(_l("instance %(uid)s not found", uid=sop))
    if series:
        return NotFound(_l("series %(uid)s not found", uid=series))
    return NotFound(_l("study %(uid)s not found", uid=study))


# A part: the files whose bytes, one after another, are its content, and its Content-Type.
Part = tuple[list[Path], str]


def _multipart(parts: list[Part]) -> Response:
    boundary = os.urandom(16).hex()
    root_type = parts[0][1].split(";")[0] if parts else "application/octet-stream"

    def body() -> Iterator[bytes]:
        for paths, content_type in parts:
            size = sum(path.stat().st_size for path in paths)
            yield (
                f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Length: {size}\r\n\r\n"
            ).encode()
            for path in paths:
                with open(path, "rb") as handle:
                    while chunk := handle.read(CHUNK):
                        yield chunk
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return Response(
        body(),
        content_type=f'multipart/related; type="{root_type}"; boundary={boundary}',
        direct_passthrough=True,
    )


def _single(path: Path, content_type: str) -> Response:
    return send_file(path, mimetype=content_type, conditional=True)


def _retrieve(case_id: int, study: str, series: str | None, sop: str | None) -> Response:
    """Instances in the syntax the client accepts: as stored, or Explicit VR Little
    Endian (the default) with every UID kept; 406 naming the first that cannot be."""
    actor = current_actor()
    case = _case(case_id)
    instances = _select(case.id, study, series, sop)
    accepted = _accepted()
    chosen = []
    for instance in instances:
        choice = choose_instance_syntax(accepted, instance.transfer_syntax_uid, instance.decodable)
        if choice is None:
            raise NotAcceptable(
                _l(
                    "instance %(sop)s is stored as %(syntax)s and cannot be sent in the syntax "
                    'asked for; ask for multipart/related; type="application/dicom"; '
                    "transfer-syntax=* to have it as stored",
                    sop=instance.sop_instance_uid,
                    syntax=instance.transfer_syntax_uid,
                ),
                field="Accept",
            )
        chosen.append((instance, choice))
    parts: list[Part] = []
    for instance, choice in chosen:
        if choice.syntax == instance.transfer_syntax_uid:
            path = dicom.store().path_of(instance.sha256)
        else:
            path = dicom.explicit_little_copy(instance)
        parts.append(([path], f"application/dicom; transfer-syntax={choice.syntax}"))
    dicom.audit_file_views(actor, case.id, [i.id for i in instances], "wado-rs")
    if len(parts) == 1 and chosen[0][1].single_part:
        # A bare application/dicom (not multipart) for one instance: what simple viewers
        # and browsers handle directly.
        return _single(parts[0][0][0], "application/dicom")
    return _multipart(parts)


@bp.route("/studies/<study>", methods=["GET"])
@login_required
def retrieve_study(case_id: int, study: str):
    return _retrieve(case_id, study, None, None)


@bp.route("/studies/<study>/series/<series>", methods=["GET"])
@login_required
def retrieve_series(case_id: int, study: str, series: str):
    return _retrieve(case_id, study, series, None)


@bp.route("/studies/<study>/series/<series>/instances/<sop>", methods=["GET"])
@login_required
def retrieve_instance(case_id: int, study: str, series: str, sop: str):
    return _retrieve(case_id, study, series, sop)


def _frame_choice(instance: DicomInstance) -> FrameChoice:
    if instance.rows is None:
        raise NotFound(
            _l("instance %(sop)s has no pixel data (not an image)", sop=instance.sop_instance_uid),
            field="frames",
        )
    choice = choose_frame_form(_accepted(), instance.transfer_syntax_uid, instance.decodable)
    if choice is None:
        raise NotAcceptable(
            _l(
                "the pixel data of %(sop)s is stored as %(syntax)s; ask for "
                "application/octet-stream (uncompressed), transfer-syntax=* (as stored) or the "
                "stored syntax's media type",
                sop=instance.sop_instance_uid,
                syntax=instance.transfer_syntax_uid,
            ),
            field="Accept",
        )
    return choice


def _frame_numbers(raw: str, count: int) -> list[int]:
    numbers = []
    for item in raw.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise BadRequest(
                _l(
                    "frame numbers are whole numbers from 1, separated by commas (%(raw)s)",
                    raw=repr(raw),
                ),
                field="frames",
            )
        if int(item) > count:
            raise NotFound(
                _l(
                    "frame %(number)s not found (the instance has %(count)s)",
                    number=int(item),
                    count=count,
                ),
                field="frames",
            )
        numbers.append(int(item))
    return numbers


@bp.route("/studies/<study>/series/<series>/instances/<sop>/frames/<frames>", methods=["GET"])
@login_required
def retrieve_frames(case_id: int, study: str, series: str, sop: str, frames: str):
    """Frames (PS3.18 10.4.1.1.4): uncompressed (application/octet-stream, Explicit VR
    Little Endian, the default) or as stored (``transfer-syntax=*`` or the stored
    syntax's media type), one part per frame, in the order asked."""
    actor = current_actor()
    case = _case(case_id)
    instance = _select(case.id, study, series, sop)[0]
    choice = _frame_choice(instance)
    numbers = _frame_numbers(frames, instance.number_of_frames)
    files = dicom.frame_files(instance, native=choice.native)
    if max(numbers) > len(files):
        raise Conflict(
            _l(
                "frame %(number)s could not be read from the stored file (it holds %(held)s of "
                "the %(declared)s its header declares)",
                number=max(numbers),
                held=len(files),
                declared=instance.number_of_frames,
            ),
            field="frames",
        )
    content_type = f"{choice.part_media}; transfer-syntax={choice.syntax}"
    dicom.audit_file_view(actor, instance, f"frames {','.join(map(str, numbers))}")
    if choice.single_part and len(numbers) == 1:
        return _single(files[numbers[0] - 1], choice.part_media)
    return _multipart([([files[n - 1]], content_type) for n in numbers])


@bp.route("/studies/<study>/series/<series>/instances/<sop>/bulkdata/<tag>", methods=["GET"])
@login_required
def retrieve_bulkdata(case_id: int, study: str, series: str, sop: str, tag: str):
    """The bulk data a metadata answer refers to: the pixel data, uncompressed in one part
    (every frame, Explicit VR Little Endian) or as stored (one part per frame); any other
    top-level bulk value as its little endian bytes."""
    actor = current_actor()
    case = _case(case_id)
    instance = _select(case.id, study, series, sop)[0]
    tag = tag.upper()
    if tag != PIXEL_DATA:
        if choose_media(_accepted(), (OCTET_STREAM,)) is None and not any(
            item.multipart and item.media in (OCTET_STREAM, "*/*") for item in _accepted()
        ):
            raise NotAcceptable(_l("bulk data is application/octet-stream"), field="Accept")
        path = dicom.bulk_element_file(instance, tag)
        dicom.audit_file_view(actor, instance, f"bulk data {tag}")
        return _multipart([([path], OCTET_STREAM)])
    choice = _frame_choice(instance)
    files = dicom.frame_files(instance, native=choice.native)
    content_type = f"{choice.part_media}; transfer-syntax={choice.syntax}"
    dicom.audit_file_view(actor, instance, "bulk data")
    if choice.native:
        return _multipart([(files, content_type)])
    return _multipart([([file], content_type) for file in files])


def _metadata(case_id: int, study: str, series: str | None, sop: str | None) -> Response:
    """The stored headers, passed through as stored (no decoding and re-encoding of the
    JSON), each with the BulkDataURI of its pixel data."""
    actor = current_actor()
    case = _case(case_id)
    media = _json_media()
    query = select(
        DicomInstance.id,
        DicomInstance.series_uid,
        DicomInstance.sop_instance_uid,
        DicomInstance.rows,
        DicomInstance.transfer_syntax_uid,
        cast(DicomInstance.header_json, Text),
    ).where(DicomInstance.case_id == case.id, DicomInstance.study_uid == study)
    if series:
        query = query.where(DicomInstance.series_uid == series)
    if sop:
        query = query.where(DicomInstance.sop_instance_uid == sop)
    rows = db.session.execute(
        query.order_by(DicomInstance.series_uid, DicomInstance.instance_number, DicomInstance.id)
    ).all()
    if not rows:
        raise _not_found(study, series, sop)
    parts = []
    for _id, series_uid, sop_uid, image_rows, syntax, header in rows:
        bulk_root = f"{_url(case.id, study, series_uid, sop_uid)}/bulkdata/"
        header = header.strip().replace(f'"{BULK_DATA_MARK}', f'"{bulk_root}')
        if image_rows:
            uri = f"{bulk_root}{PIXEL_DATA}"
            vr = "OW" if syntax in NATIVE_SYNTAXES else "OB"
            bulk = json.dumps({"vr": vr, "BulkDataURI": uri})
            header = header[:-1].rstrip() + ("," if header[1:-1].strip() else "")
            header += f'"{PIXEL_DATA}":{bulk}}}'
        parts.append(header)
    dicom.audit_file_views(actor, case.id, [row[0] for row in rows], "metadata")
    return Response("[" + ",".join(parts) + "]", mimetype=media)


@bp.route("/studies/<study>/metadata", methods=["GET"])
@login_required
def study_metadata(case_id: int, study: str):
    return _metadata(case_id, study, None, None)


@bp.route("/studies/<study>/series/<series>/metadata", methods=["GET"])
@login_required
def series_metadata(case_id: int, study: str, series: str):
    return _metadata(case_id, study, series, None)


@bp.route("/studies/<study>/series/<series>/instances/<sop>/metadata", methods=["GET"])
@login_required
def instance_metadata(case_id: int, study: str, series: str, sop: str):
    return _metadata(case_id, study, series, sop)


def _rendered_media_type() -> str:
    media = choose_media(_accepted(), RENDERED_MEDIA)
    if media is None:
        raise NotAcceptable(
            _l("rendered images are image/jpeg, image/png or image/gif"), field="Accept"
        )
    return media


def _render(case_id: int, instance: DicomInstance, frame_number: int) -> Response:
    actor = current_actor()
    try:
        window = parse_window(request.args.get("window"))
    except ValueError:
        raise InvalidInput(
            _l(
                "window must be center,width[,function]: a positive width and a function "
                "of linear, linear-exact or sigmoid"
            ),
            field="window",
        ) from None
    try:
        quality = int(request.args.get("quality", 90))
        viewport = None
        if request.args.get("viewport"):
            parts = [int(p) for p in request.args["viewport"].split(",")[:2]]
            viewport = (min(parts[0], 4096), min(parts[1], 4096))
    except (ValueError, IndexError):
        raise InvalidInput(
            _l("quality and viewport must be whole numbers"), field="quality"
        ) from None
    media_type = _rendered_media_type()
    path = dicom.rendered_frame(
        instance,
        frame=frame_number - 1,
        media_type=media_type,
        window=window.__dict__ if window else None,
        quality=quality,
        viewport=viewport,
        renderer=actor.user_id,
    )
    dicom.audit_file_view(actor, instance, f"rendered frame {frame_number}")
    response = send_file(path, mimetype=media_type, max_age=3600, conditional=True)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _representative(instances: list[DicomInstance]) -> DicomInstance:
    """The image a study or series is rendered as: its first instance that can be shown."""
    for instance in instances:
        if instance.rows and instance.decodable:
            return instance
    raise NotFound(_l("nothing in it can be rendered (no decodable image)"), field="rendered")


@bp.route("/studies/<study>/rendered", methods=["GET"])
@login_required
def study_rendered(case_id: int, study: str):
    case = _case(case_id)
    return _render(case.id, _representative(_select(case.id, study, None, None)), 1)


@bp.route("/studies/<study>/series/<series>/rendered", methods=["GET"])
@login_required
def series_rendered(case_id: int, study: str, series: str):
    case = _case(case_id)
    return _render(case.id, _representative(_select(case.id, study, series, None)), 1)


@bp.route("/studies/<study>/series/<series>/instances/<sop>/rendered", methods=["GET"])
@login_required
def instance_rendered(case_id: int, study: str, series: str, sop: str):
    case = _case(case_id)
    return _render(case.id, _select(case.id, study, series, sop)[0], 1)


@bp.route(
    "/studies/<study>/series/<series>/instances/<sop>/frames/<frames>/rendered", methods=["GET"]
)
@login_required
def frame_rendered(case_id: int, study: str, series: str, sop: str, frames: str):
    case = _case(case_id)
    instance = _select(case.id, study, series, sop)[0]
    try:
        number = int(frames.split(",")[0])
    except ValueError:
        raise InvalidInput(_l("frame numbers are whole numbers from 1"), field="frames") from None
    if number < 1:
        raise InvalidInput(_l("frame numbers start at 1"), field="frames")
    return _render(case.id, instance, number)


# -- STOW-RS ----------------------------------------------------------------------------------


def _boundary() -> str:
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/related"):
        raise UnsupportedMediaType(
            _l('STOW-RS takes multipart/related; type="application/dicom"'), field="Content-Type"
        )
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise InvalidInput(_l("the multipart body has no boundary"), field="Content-Type")
    kind = re.search(r'type="?([^";]+)"?', content_type)
    if kind and kind.group(1).lower() != "application/dicom":
        raise UnsupportedMediaType(
            _l("STOW-RS here takes application/dicom parts, not %(kind)s", kind=kind.group(1)),
            field="Content-Type",
        )
    return match.group(1)


def split_multipart(body, boundary: str) -> list[tuple[str, tuple[int, int] | str]]:
    """Where each part's content lies in a multipart body (bytes or an mmap), or the reason
    the part is bad."""
    delimiter = b"--" + boundary.encode()
    parts: list[tuple[str, tuple[int, int] | str]] = []
    position = body.find(delimiter)
    number = 0
    while position != -1:
        start = position + len(delimiter)
        if body[start : start + 2] == b"--":
            break
        number += 1
        following = body.find(b"\r\n" + delimiter, start)
        if following == -1:
            parts.append((f"part {number}", PART_UNCLOSED))
            break
        header_end = body.find(b"\r\n\r\n", start, following)
        name = f"part {number}"
        if header_end == -1:
            parts.append((name, PART_NO_HEADERS))
        else:
            headers = bytes(body[start:header_end]).decode("latin-1").lower()
            if "content-type" in headers and "application/dicom" not in headers:
                parts.append((name, PART_NOT_DICOM))
            else:
                parts.append((name, (header_end + 4, following)))
        position = following + 2
    return parts


def _read_body(staging: Path | None) -> bytes | Path:
    """The request body: in memory up to BODY_IN_MEMORY bytes, else spooled to a file."""
    length = request.content_length
    if length is not None and length <= BODY_IN_MEMORY:
        # Asked for in one piece: the stream's own readall copies 64 KB at a time.
        chunks = []
        while length > 0 and (chunk := request.stream.read(length)):
            chunks.append(chunk)
            length -= len(chunk)
        return b"".join(chunks)
    assert staging is not None
    body = staging / "body"
    with dicom.store().create_private(body) as out:
        while chunk := request.stream.read(CHUNK):
            out.write(chunk)
    return body


def _part_source(body, span: tuple[int, int], staging: Path | None, number: int) -> bytes | Path:
    """One part: its bytes when the body is in memory or the part is small, else its own
    file in ``staging`` (the body was spooled there)."""
    start, end = span
    if isinstance(body, bytes) or end - start <= dicom.IN_MEMORY_BYTES:
        return body[start:end]
    assert staging is not None
    spill = staging / f"{number:06d}.dcm"
    with dicom.store().create_private(spill) as out:
        for cursor in range(start, end, CHUNK):
            out.write(body[cursor : min(cursor + CHUNK, end)])
    return spill


@bp.route("/studies", methods=["POST"])
@bp.route("/studies/<study>", methods=["POST"])
@login_required
def store_instances(case_id: int, study: str | None = None):
    actor = current_actor()
    boundary = _boundary()
    set_write_intent(False)
    case = _case(case_id)
    dicom.check_may_attach(actor, case)
    # Kept as read (not expired by the commit) for the second check, which reads only its
    # status again.
    db.session.expunge(case)
    db.session.commit()  # no database lock while the body is read and the files checked
    content = dicom.store()
    length = request.content_length
    staging = content.temp_dir() if length is None or length > BODY_IN_MEMORY else None
    try:
        body = _read_body(staging)
        with contextlib.ExitStack() as stack:
            if isinstance(body, Path):
                handle = stack.enter_context(open(body, "rb"))
                size = os.fstat(handle.fileno()).st_size
                view = (
                    stack.enter_context(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
                    if size
                    else b""
                )
            else:
                view = body
            checked = _check_parts(view, split_multipart(view, boundary), staging)
    finally:
        if staging is not None:
            content.remove_tree(staging)
    prepared = dicom.Prepared()
    for outcomes in checked:
        for outcome in outcomes:
            if (
                study
                and outcome.index
                and outcome.index["study_uid"] != study
                and outcome.status == "stored"
            ):
                outcome.status = "refused"
                outcome.reason = OTHER_STUDY.format(study_uid=outcome.index["study_uid"])
            prepared.outcomes.append(outcome)
    set_write_intent(True)
    try:
        dicom.check_still_attachable(actor, case)
        outcomes = dicom.record(actor, case, prepared)
    except BaseException:
        for outcome in prepared.outcomes:
            outcome.abandon()
        raise
    return _stow_response(case.id, outcomes)


def _check_parts(
    body, parts: list[tuple[str, tuple[int, int] | str]], staging: Path | None
) -> list[list[dicom.FileOutcome]]:
    """Each part's outcomes, in order. Parts that fit in memory go to
    ``dicom.prepare_in_memory``; larger ones (of a spooled body) are written to files and
    read by the workers in parallel."""
    app = current_app._get_current_object()
    checked: list[list[dicom.FileOutcome] | None] = [None] * len(parts)
    small: list[int] = []
    for number, (name, part) in enumerate(parts):
        if isinstance(part, str):
            checked[number] = [dicom.FileOutcome(name, "refused", part)]
        elif isinstance(body, bytes) or part[1] - part[0] <= dicom.IN_MEMORY_BYTES:
            small.append(number)

    def loader(start: int, end: int) -> Callable[[], bytes]:
        return lambda: body[start:end]

    in_memory = [(parts[n][0], loader(*parts[n][1])) for n in small]
    for number, outcomes in zip(small, dicom.prepare_in_memory(in_memory), strict=True):
        checked[number] = outcomes
    left = [number for number, outcomes in enumerate(checked) if outcomes is None]

    def check(number: int) -> list[dicom.FileOutcome]:
        name, part = parts[number]
        assert not isinstance(part, str)
        with app.app_context():
            source = _part_source(body, part, staging, number)
            try:
                return dicom.prepare(source, name, in_process=False).outcomes
            finally:
                if isinstance(source, Path):
                    source.unlink(missing_ok=True)

    workers = app.config["TELEMED_DICOM_WORKERS"]
    if len(left) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for number, outcomes in zip(left, pool.map(check, left), strict=True):
                checked[number] = outcomes
    else:
        for number in left:
            checked[number] = check(number)
    return [outcomes or [] for outcomes in checked]


def _stow_response(case_id: int, outcomes: list[dicom.FileOutcome]) -> Response:
    """PS3.18 10.5.3: the stored instances, the failed ones with their Error Comment in the
    reader's language, and a Warning header per file. A header carries Latin-1 only, so
    the Warnings keep the English the audit keeps; the body is the reader's."""
    referenced, failed, warnings = [], [], []
    for outcome in outcomes:
        index = outcome.index or {}
        if outcome.repeated:
            # PS3.18: stored with a warning. One reference per instance, the first copy's.
            warnings.append(
                f'299 telemed "{outcome.filename}: SOP instance {index["sop_instance_uid"]} '
                'was sent more than once in this request; the first copy is kept"'
            )
            continue
        if outcome.status in ("stored", "duplicate"):
            warnings.extend(
                f'299 telemed "{outcome.filename}: {warning}"'
                for warning in index.get("warnings", [])
            )
            referenced.append(
                {
                    "00081150": _attr("UI", index.get("sop_class_uid")),
                    "00081155": _attr("UI", index.get("sop_instance_uid")),
                    "00081190": _attr(
                        "UR",
                        f"{_root(case_id)}/studies/{index['study_uid']}/series/"
                        f"{index['series_uid']}/instances/{index['sop_instance_uid']}",
                    ),
                }
            )
        elif outcome.status == "refused":
            failed.append(
                {
                    "00081150": _attr("UI", index.get("sop_class_uid")),
                    "00081155": _attr("UI", index.get("sop_instance_uid")),
                    "00081197": _attr("US", FAILURE_PROCESSING),
                    # Error Comment: which file and why, in the reader's language.
                    ERROR_COMMENT: _attr(
                        "LO", f"{outcome.filename}: {file_reason(outcome.reason)}"
                    ),
                }
            )
            warnings.append(
                f'299 telemed "{outcome.filename}: {outcome.reason}"'.replace("\n", " ")
            )
    payload: dict[str, Any] = {}
    if referenced:
        payload["00081199"] = {"vr": "SQ", "Value": referenced}
    if failed:
        payload["00081198"] = {"vr": "SQ", "Value": failed}
    status = 409 if failed and not referenced else 202 if failed or warnings else 200
    response = jsonify(payload)
    response.mimetype = DICOM_JSON
    response.status_code = status
    for warning in warnings[:50]:
        response.headers.add("Warning", warning[:900])
    if status == 409:
        # The refusals are the answer: keep the audit of them, nothing else changed.
        response.headers["X-Refused"] = str(len(failed))
    return response
