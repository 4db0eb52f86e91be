"""DICOMweb per case at ``/cases/<id>/dicomweb``: STOW-RS, QIDO-RS and WADO-RS (PS3.18).

The case's access rules apply to every call (another institution's case is a 404, as if
it did not exist); bearer tokens and login sessions both work; every retrieval of a file
(instance, metadata, rendered frame) is audited. Stored objects are streamed from the
content store; renders come from the render cache.
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
from flask_login import login_required
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import defer

from telemed.db import set_write_intent
from telemed.errors import InvalidInput, NotFound, TelemedError
from telemed.extensions import db
from telemed.imaging.rendering import parse_window
from telemed.models.case_files import DicomInstance
from telemed.models.cases import Case
from telemed.services.cases import dicom
from telemed.services.cases.cases import get_case
from telemed.web.security import current_actor

bp = Blueprint("dicomweb", __name__, url_prefix="/cases/<int:case_id>/dicomweb")

DICOM_JSON = "application/dicom+json"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
CHUNK = 1024 * 1024
FAILURE_PROCESSING = 0xC000
# A STOW-RS body up to this size is read into memory; a larger one is spooled to a file.
BODY_IN_MEMORY = 16 * 1024**2


class NotAcceptable(TelemedError):
    status = 406
    code = "not_acceptable"


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


def _from_header(instance: DicomInstance, tag: str, vr: str) -> dict[str, Any]:
    return instance.header_json.get(tag) or {"vr": vr}


def _da(value: date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None


def study_attributes(case_id: int, instances: list[DicomInstance]) -> dict[str, Any]:
    first = instances[0]
    series = {i.series_uid for i in instances}
    modalities = sorted({i.modality for i in instances if i.modality})
    return {
        "00080020": _attr("DA", _da(first.study_date)),
        "00080030": _attr("TM", first.study_time),
        "00080050": _attr("SH", first.accession_number),
        "00080061": _attr("CS", *modalities),
        "00081030": _attr("LO", first.study_description),
        "00100010": (
            {"vr": "PN", "Value": [{"Alphabetic": first.header_patient_name}]}
            if first.header_patient_name
            else {"vr": "PN"}
        ),
        "00100020": _attr("LO", first.header_patient_id),
        "0020000D": _attr("UI", first.study_uid),
        "00201206": _attr("IS", len(series)),
        "00201208": _attr("IS", len(instances)),
        "00081190": _attr("UR", f"{_root(case_id)}/studies/{first.study_uid}"),
    }


def series_attributes(case_id: int, instances: list[DicomInstance]) -> dict[str, Any]:
    first = instances[0]
    return {
        "00080060": _attr("CS", first.modality),
        "0008103E": _attr("LO", first.series_description),
        "00180015": _attr("CS", first.body_part),
        "0020000D": _attr("UI", first.study_uid),
        "0020000E": _attr("UI", first.series_uid),
        "00200011": _attr("IS", first.series_number),
        "00201209": _attr("IS", len(instances)),
        "00081190": _attr(
            "UR", f"{_root(case_id)}/studies/{first.study_uid}/series/{first.series_uid}"
        ),
    }


def instance_attributes(case_id: int, instance: DicomInstance) -> dict[str, Any]:
    return {
        "00080016": _attr("UI", instance.sop_class_uid),
        "00080018": _attr("UI", instance.sop_instance_uid),
        "00080060": _attr("CS", instance.modality),
        "0020000D": _attr("UI", instance.study_uid),
        "0020000E": _attr("UI", instance.series_uid),
        "00200013": _attr("IS", instance.instance_number),
        "00280008": _attr("IS", instance.number_of_frames),
        "00280010": _attr("US", instance.rows),
        "00280011": _attr("US", instance.columns),
        "00020010": _attr("UI", instance.transfer_syntax_uid),
        "00081190": _attr(
            "UR",
            f"{_root(case_id)}/studies/{instance.study_uid}/series/{instance.series_uid}"
            f"/instances/{instance.sop_instance_uid}",
        ),
    }


# -- QIDO-RS ----------------------------------------------------------------------------------

QUERY_KEYS = {
    "StudyInstanceUID": "0020000D",
    "SeriesInstanceUID": "0020000E",
    "SOPInstanceUID": "00080018",
    "Modality": "00080060",
    "StudyDate": "00080020",
    "PatientID": "00100020",
    "AccessionNumber": "00080050",
}
TAG_TO_KEY = {tag: key for key, tag in QUERY_KEYS.items()}
PAGING = {"limit", "offset", "includefield", "fuzzymatching"}


def _query_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for raw_key, value in request.args.items():
        key = TAG_TO_KEY.get(raw_key.upper(), raw_key)
        if key in PAGING:
            continue
        if key not in QUERY_KEYS:
            raise InvalidInput(f"{raw_key} is not a supported query key", field=raw_key)
        values[key] = value
    return values


def _date_range(raw: str) -> tuple[date | None, date | None]:
    def one(text: str) -> date | None:
        text = text.strip()
        if not text:
            return None
        if not re.fullmatch(r"\d{8}", text):
            raise InvalidInput("StudyDate must be YYYYMMDD or a range", field="StudyDate")
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise InvalidInput(f"StudyDate {text} is not a date", field="StudyDate") from None

    if "-" in raw:
        low, _, high = raw.partition("-")
        return one(low), one(high)
    exact = one(raw)
    return exact, exact


def _matching(case_id: int, fixed: dict[str, str]) -> list[DicomInstance]:
    values = {**_query_values(), **fixed}
    query = select(DicomInstance).where(DicomInstance.case_id == case_id)
    columns = {
        "StudyInstanceUID": DicomInstance.study_uid,
        "SeriesInstanceUID": DicomInstance.series_uid,
        "SOPInstanceUID": DicomInstance.sop_instance_uid,
        "Modality": DicomInstance.modality,
        "PatientID": DicomInstance.header_patient_id,
        "AccessionNumber": DicomInstance.accession_number,
    }
    for key, value in values.items():
        if key == "StudyDate":
            low, high = _date_range(value)
            if low:
                query = query.where(DicomInstance.study_date >= low)
            if high:
                query = query.where(DicomInstance.study_date <= high)
            continue
        column = columns[key]
        options = [v for v in value.split(",") if v]
        if any("*" in v or "?" in v for v in options):
            patterns = [v.replace("*", "%").replace("?", "_") for v in options]
            from sqlalchemy import or_

            query = query.where(or_(*[column.like(p) for p in patterns]))
        else:
            query = query.where(column.in_(options))
    query = query.order_by(
        DicomInstance.study_uid,
        DicomInstance.series_number,
        DicomInstance.series_uid,
        DicomInstance.instance_number,
        DicomInstance.id,
    )
    if not request.args.get("includefield"):
        query = query.options(defer(DicomInstance.header_json))  # loaded only when asked
    return list(db.session.execute(query).scalars())


def _page(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        limit = int(request.args.get("limit", 1000))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise InvalidInput("limit and offset must be whole numbers", field="limit") from None
    if limit < 1 or offset < 0:
        raise InvalidInput("limit must be positive and offset not negative", field="limit")
    return items[offset : offset + min(limit, 5000)]


def _include(result: dict[str, Any], instance: DicomInstance) -> dict[str, Any]:
    fields = [f for raw in request.args.getlist("includefield") for f in raw.split(",") if f]
    if not fields:
        return result
    if "all" in fields:
        return {**instance.header_json, **result}
    from pydicom.datadict import tag_for_keyword

    for field in fields:
        tag = field.upper() if re.fullmatch(r"[0-9A-Fa-f]{8}", field) else None
        if tag is None:
            number = tag_for_keyword(field)
            if number is None:
                raise InvalidInput(f"includefield {field} is not a DICOM keyword", field=field)
            tag = f"{number:08X}"
        if tag in instance.header_json and tag not in result:
            result[tag] = instance.header_json[tag]
    return result


def _qido(payload: list[dict[str, Any]]) -> Response:
    response = jsonify(payload)
    response.mimetype = DICOM_JSON
    return response


@bp.route("/studies", methods=["GET"])
@login_required
def search_studies(case_id: int):
    case = _case(case_id)
    grouped: dict[str, list[DicomInstance]] = defaultdict(list)
    for instance in _matching(case.id, {}):
        grouped[instance.study_uid].append(instance)
    found = [_include(study_attributes(case.id, items), items[0]) for items in grouped.values()]
    return _qido(_page(found))


@bp.route("/series", methods=["GET"])
@bp.route("/studies/<study>/series", methods=["GET"])
@login_required
def search_series(case_id: int, study: str | None = None):
    case = _case(case_id)
    grouped: dict[str, list[DicomInstance]] = defaultdict(list)
    for instance in _matching(case.id, {"StudyInstanceUID": study} if study else {}):
        grouped[instance.series_uid].append(instance)
    found = [_include(series_attributes(case.id, items), items[0]) for items in grouped.values()]
    return _qido(_page(found))


@bp.route("/instances", methods=["GET"])
@bp.route("/studies/<study>/instances", methods=["GET"])
@bp.route("/studies/<study>/series/<series>/instances", methods=["GET"])
@login_required
def search_instances(case_id: int, study: str | None = None, series: str | None = None):
    case = _case(case_id)
    fixed = {}
    if study:
        fixed["StudyInstanceUID"] = study
    if series:
        fixed["SeriesInstanceUID"] = series
    found = [_include(instance_attributes(case.id, i), i) for i in _matching(case.id, fixed)]
    return _qido(_page(found))


# -- WADO-RS ----------------------------------------------------------------------------------


def _select(case_id: int, study: str, series: str | None, sop: str | None):
    fixed = {"StudyInstanceUID": study}
    if series:
        fixed["SeriesInstanceUID"] = series
    if sop:
        fixed["SOPInstanceUID"] = sop
    query = select(DicomInstance).where(
        DicomInstance.case_id == case_id, DicomInstance.study_uid == study
    )
    if series:
        query = query.where(DicomInstance.series_uid == series)
    if sop:
        query = query.where(DicomInstance.sop_instance_uid == sop)
    found = list(
        db.session.execute(
            query.order_by(DicomInstance.series_uid, DicomInstance.instance_number)
        ).scalars()
    )
    if not found:
        what = "instance" if sop else "series" if series else "study"
        raise NotFound(f"{what} {sop or series or study} not found")
    return found


def _wanted_syntaxes() -> list[str | None]:
    """Transfer syntaxes the client accepts for application/dicom (None: default)."""
    accept = request.headers.get("Accept", "")
    wanted: list[str | None] = []
    for item in accept.split(","):
        item = item.strip()
        if not item:
            continue
        params = dict(
            (part.split("=", 1)[0].strip().lower(), part.split("=", 1)[1].strip().strip('"'))
            for part in item.split(";")[1:]
            if "=" in part
        )
        media = item.split(";")[0].strip().lower()
        if media in ("*/*", "multipart/related", "application/dicom") or (
            media == "multipart/related" and params.get("type", "application/dicom")
        ):
            if params.get("type", "application/dicom").lower() not in (
                "application/dicom",
                "*/*",
            ):
                continue
            wanted.append(params.get("transfer-syntax"))
    return wanted or [None]


def _file_for(instance: DicomInstance, wanted: list[str | None]) -> Path:
    if "*" in wanted or instance.transfer_syntax_uid in wanted:
        return dicom.store().path_of(instance.sha256)
    if None in wanted or EXPLICIT_LITTLE in wanted:
        return dicom.explicit_little_copy(instance)
    raise NotAcceptable(
        f"instance {instance.sop_instance_uid} is stored as {instance.transfer_syntax_uid}; "
        "ask for transfer-syntax=* or 1.2.840.10008.1.2.1"
    )


def _multipart(paths: list[Path]) -> Response:
    boundary = os.urandom(16).hex()

    def body() -> Iterator[bytes]:
        for path in paths:
            yield (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n"
                f"Content-Length: {path.stat().st_size}\r\n\r\n"
            ).encode()
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return Response(
        body(),
        content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        direct_passthrough=True,
    )


def _retrieve(case_id: int, study: str, series: str | None, sop: str | None) -> Response:
    actor = current_actor()
    case = _case(case_id)
    instances = _select(case.id, study, series, sop)
    wanted = _wanted_syntaxes()
    paths = [_file_for(i, wanted) for i in instances if i.decodable or "*" in wanted] or [
        _file_for(i, ["*"]) for i in instances
    ]
    dicom.audit_file_views(actor, case.id, [i.id for i in instances], "wado-rs")
    if len(paths) == 1 and _single_part_wanted():
        # A bare application/dicom (not multipart) for one instance: what simple viewers
        # and browsers handle directly.
        return send_file(paths[0], mimetype="application/dicom", conditional=True)
    return _multipart(paths)


def _single_part_wanted() -> bool:
    first = request.headers.get("Accept", "").split(",")[0].split(";")[0].strip().lower()
    return first == "application/dicom"


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


def _metadata(case_id: int, study: str, series: str | None, sop: str | None) -> Response:
    """The stored headers, passed through as stored (no decoding and re-encoding of the
    JSON), each with the BulkDataURI of its pixel data."""
    actor = current_actor()
    case = _case(case_id)
    query = select(
        DicomInstance.id,
        DicomInstance.series_uid,
        DicomInstance.sop_instance_uid,
        DicomInstance.rows,
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
        what = "instance" if sop else "series" if series else "study"
        raise NotFound(f"{what} {sop or series or study} not found")
    root = _root(case.id)
    parts = []
    for _id, series_uid, sop_uid, image_rows, header in rows:
        header = header.strip()
        if image_rows:
            uri = f"{root}/studies/{study}/series/{series_uid}/instances/{sop_uid}"
            bulk = json.dumps({"vr": "OW", "BulkDataURI": uri})
            header = header[:-1].rstrip() + ("," if header[1:-1].strip() else "")
            header += f'"7FE00010":{bulk}}}'
        parts.append(header)
    dicom.audit_file_views(actor, case.id, [row[0] for row in rows], "metadata")
    return Response("[" + ",".join(parts) + "]", mimetype=DICOM_JSON)


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
    explicit = request.args.get("accept")
    candidates = [explicit] if explicit else []
    accept = request.accept_mimetypes
    if not candidates:
        best = accept.best_match(["image/jpeg", "image/png"]) if accept else None
        candidates = [best or "image/jpeg"]
    media = candidates[0]
    if media not in ("image/png", "image/jpeg"):
        raise NotAcceptable("rendered frames are image/png or image/jpeg")
    return media


def _render(case_id: int, study: str, series: str, sop: str, frame_number: int) -> Response:
    actor = current_actor()
    case = _case(case_id)
    instance = _select(case.id, study, series, sop)[0]
    try:
        window = parse_window(request.args.get("window"))
    except ValueError as error:
        raise InvalidInput(str(error), field="window") from None
    try:
        quality = int(request.args.get("quality", 90))
        viewport = None
        if request.args.get("viewport"):
            parts = [int(p) for p in request.args["viewport"].split(",")[:2]]
            viewport = (min(parts[0], 4096), min(parts[1], 4096))
    except (ValueError, IndexError):
        raise InvalidInput("quality and viewport must be whole numbers", field="quality") from None
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


@bp.route("/studies/<study>/series/<series>/instances/<sop>/rendered", methods=["GET"])
@login_required
def instance_rendered(case_id: int, study: str, series: str, sop: str):
    return _render(case_id, study, series, sop, 1)


@bp.route(
    "/studies/<study>/series/<series>/instances/<sop>/frames/<frames>/rendered", methods=["GET"]
)
@login_required
def frame_rendered(case_id: int, study: str, series: str, sop: str, frames: str):
    try:
        number = int(frames.split(",")[0])
    except ValueError:
        raise InvalidInput("frame numbers are whole numbers from 1", field="frames") from None
    if number < 1:
        raise InvalidInput("frame numbers start at 1", field="frames")
    return _render(case_id, study, series, sop, number)


# -- STOW-RS ----------------------------------------------------------------------------------


def _boundary() -> str:
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/related"):
        raise UnsupportedMediaType(
            'STOW-RS takes multipart/related; type="application/dicom"', field="Content-Type"
        )
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise InvalidInput("the multipart body has no boundary", field="Content-Type")
    kind = re.search(r'type="?([^";]+)"?', content_type)
    if kind and kind.group(1).lower() != "application/dicom":
        raise UnsupportedMediaType(
            f"STOW-RS here takes application/dicom parts, not {kind.group(1)}",
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
            parts.append((f"part {number}", "the part has no closing boundary"))
            break
        header_end = body.find(b"\r\n\r\n", start, following)
        name = f"part {number}"
        if header_end == -1:
            parts.append((name, "the part has no headers"))
        else:
            headers = bytes(body[start:header_end]).decode("latin-1").lower()
            if "content-type" in headers and "application/dicom" not in headers:
                parts.append((name, "the part is not application/dicom"))
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
                outcome.reason = f"the instance belongs to study {outcome.index['study_uid']}"
            prepared.outcomes.append(outcome)
    set_write_intent(True)
    case = _case(case_id)
    dicom.check_may_attach(actor, case)
    outcomes = dicom.record(actor, case, prepared)
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
    referenced, failed, warnings = [], [], []
    for outcome in outcomes:
        index = outcome.index or {}
        if outcome.status in ("stored", "duplicate"):
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
    status = 200 if not failed else 202 if referenced else 409
    response = jsonify(payload)
    response.mimetype = DICOM_JSON
    response.status_code = status
    for warning in warnings[:50]:
        response.headers.add("Warning", warning[:900])
    if status == 409:
        # The refusals are the answer: keep the audit of them, nothing else changed.
        response.headers["X-Refused"] = str(len(failed))
    return response
