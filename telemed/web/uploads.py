"""Resumable uploads: the tus 1.0 protocol (core, creation, termination, expiration).

A client creates an upload for a case (``POST /uploads`` with ``Upload-Length`` and
``Upload-Metadata``: filename, case_id, purpose), sends bytes with ``PATCH`` at the
offset the server holds (``HEAD`` tells it after a dropped connection) and the finished
file is read and indexed. The bytes stream to a partial file in the store; nothing holds
the database while they arrive. The caller must be the requesting side of a draft case
it can see; another institution's upload id is a 404. Session calls need the CSRF header
(web/security.py); bearer tokens do not.

waitress (the production server) reads a request body completely before the app sees
it, so a PATCH cut midway is dropped whole and the client resumes from the end of the
last complete PATCH: clients send chunks. A server that streams bodies (gunicorn,
werkzeug) hands over what arrived, and it is kept, whether the client's connection ended
early or was reset. A successful PATCH is answered 204 as tus says; the server
(telemed/http_server.py) keeps the connection open for the next chunk.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select
from werkzeug.exceptions import ClientDisconnected

from telemed import clock
from telemed.db import set_write_intent
from telemed.domain.access import Actor
from telemed.domain.file_names import clean_file_name
from telemed.errors import Conflict, InvalidInput, NotFound, TelemedError
from telemed.extensions import db
from telemed.models.case_files import UploadSession
from telemed.services.cases import case_uploads, dicom, ecg_files
from telemed.services.cases.case_uploads import partial_path
from telemed.services.cases.cases import get_case
from telemed.web.file_reasons import file_reason, worded_outcomes
from telemed.web.security import current_actor

bp = Blueprint("uploads", __name__, url_prefix="/uploads")

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration"
# Bodies are read in small pieces: bytes inside a read that a reset interrupts are lost.
READ_BYTES = 64 * 1024
EXPIRES_AFTER = timedelta(days=2)
PURPOSES = ("dicom", "ecg")


class TusError(TelemedError):
    def __init__(self, status: int, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status = status
        self.code = "upload"


def _tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_request
def _always_tus(response: Response) -> Response:
    return _tus_headers(response)


def _check_version() -> None:
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusError(412, _l("Tus-Resumable must be %(version)s", version=TUS_VERSION))


def parse_metadata(raw: str | None) -> dict[str, str]:
    """``key base64value,key2 base64value2`` (tus Upload-Metadata)."""
    values: dict[str, str] = {}
    for pair in (raw or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        try:
            values[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(
                _l("Upload-Metadata %(key)s is not base64 text", key=repr(key)), field=key
            ) from None
    return values


def _load(actor: Actor, upload_id: str, *, for_update: bool = False) -> UploadSession:
    """The caller's own upload, on a case it can still see; anything else is a 404."""
    if len(upload_id) != 32 or not all(c in "0123456789abcdef" for c in upload_id):
        raise NotFound(_l("upload %(upload_id)s not found", upload_id=upload_id))
    query = select(UploadSession).where(
        UploadSession.id == upload_id, UploadSession.user_id == actor.user_id
    )
    if for_update:
        query = query.with_for_update()
    upload = db.session.execute(query).scalar_one_or_none()
    if upload is None:
        raise NotFound(_l("upload %(upload_id)s not found", upload_id=upload_id))
    if upload.completed_at is None and upload.expires_at < clock.now():
        raise TusError(
            410, _l("upload %(upload_id)s has expired; start it again", upload_id=upload_id)
        )
    get_case(actor, upload.case_id)  # 404 if the case left the caller's scope
    return upload


@bp.route("", methods=["OPTIONS"])
@bp.route("/<upload_id>", methods=["OPTIONS"])
def options(upload_id: str | None = None):
    response = Response(status=204)
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = EXTENSIONS
    response.headers["Tus-Max-Size"] = str(current_app.config["TELEMED_MAX_UPLOAD_BYTES"])
    return response


@bp.route("", methods=["POST"])
@login_required
def create():
    _check_version()
    actor = current_actor()
    try:
        length = int(request.headers.get("Upload-Length", ""))
    except ValueError:
        raise TusError(400, _l("Upload-Length must be a whole number of bytes")) from None
    metadata = parse_metadata(request.headers.get("Upload-Metadata"))
    filename = clean_file_name(metadata.get("filename") or metadata.get("name"))
    if not filename:
        raise InvalidInput(_l("Upload-Metadata needs the filename"), field="filename")
    limit = current_app.config["TELEMED_MAX_UPLOAD_BYTES"]
    if length < 0 or length > limit:
        raise TusError(
            413,
            _l(
                "%(filename)s: %(length)s bytes is over the %(limit)s byte limit",
                filename=filename,
                length=length,
                limit=limit,
            ),
            field="filename",
        )
    purpose = metadata.get("purpose", "dicom")
    if purpose not in PURPOSES:
        raise InvalidInput(_l("purpose must be dicom or ecg"), field="purpose")
    try:
        case_id = int(metadata.get("case_id", ""))
    except ValueError:
        raise InvalidInput(_l("Upload-Metadata needs the case_id"), field="case_id") from None
    case = get_case(actor, case_id)
    (dicom if purpose == "dicom" else ecg_files).check_may_attach(actor, case)
    left = case_uploads.allowance(actor, for_update=True)
    if length > left.left:
        words = (
            _l(
                "%(filename)s: %(length)s bytes is more than your upload quota has left today "
                "(%(left)s bytes)",
                filename=filename,
                length=length,
                left=left.left,
            )
            if left.user_left <= left.institution_left
            else _l(
                "%(filename)s: %(length)s bytes is more than your institution's upload quota "
                "has left today (%(left)s bytes)",
                filename=filename,
                length=length,
                left=left.left,
            )
        )
        raise TusError(
            413,
            words,
            field="filename",
            quota_left=left.left,
        )
    now = clock.now()
    upload = UploadSession(
        id=secrets.token_hex(16),
        case_id=case.id,
        user_id=actor.user_id,
        purpose=purpose,
        filename=filename,
        length=length,
        offset=0,
        upload_metadata={k: v[:300] for k, v in metadata.items()},
        created_at=now,
        expires_at=now + EXPIRES_AFTER,
    )
    db.session.add(upload)
    db.session.flush()
    partial_path(upload.id).touch()
    response = Response(status=201)
    response.headers["Location"] = f"/uploads/{upload.id}"
    response.headers["Upload-Quota-Left"] = str(max(0, left.left - length))
    response.headers["Upload-Expires"] = upload.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    if length == 0:
        _finish(actor, upload)
    return response


@bp.route("/<upload_id>", methods=["HEAD"])
@login_required
def offset(upload_id: str):
    _check_version()
    upload = _load(current_actor(), upload_id)
    response = Response(status=200)
    response.headers["Upload-Offset"] = str(upload.offset)
    response.headers["Upload-Length"] = str(upload.length)
    return response


@bp.route("/<upload_id>", methods=["GET"])
@login_required
def status(upload_id: str):
    upload = _load(current_actor(), upload_id)
    return jsonify(
        {
            "id": upload.id,
            "case_id": upload.case_id,
            "filename": upload.filename,
            "offset": upload.offset,
            "length": upload.length,
            "completed": upload.completed_at is not None,
            "result": _worded_result(upload.result),
        }
    )


def _worded_result(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """An upload's result with each file's reason in the reader's language."""
    if not result or not isinstance(result.get("files"), list):
        return result
    return {**result, "files": worded_outcomes(result["files"])}


def _append(path: Path, start: int, remaining: int) -> tuple[int, bool]:
    """Append the request body at ``start``; returns (bytes written, client went away)."""
    written = 0
    gone = False
    with open(path, "r+b") as out:
        try:
            fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TusError(423, _l("another PATCH of this upload is in progress")) from None
        out.truncate(start)  # bytes past the recorded offset were never acknowledged
        out.seek(start)
        stream = request.stream
        try:
            while True:
                chunk = stream.read(READ_BYTES)
                if not chunk:
                    break
                if written + len(chunk) > remaining:
                    out.truncate(start)
                    raise TusError(400, _l("the body runs past Upload-Length"))
                out.write(chunk)
                written += len(chunk)
        except (ClientDisconnected, ConnectionError):
            # A short body or a reset link (RST): keep what arrived; the client resumes here.
            gone = True
        out.flush()
        os.fsync(out.fileno())
    return written, gone


@bp.route("/<upload_id>", methods=["PATCH"])
@login_required
def patch(upload_id: str):
    _check_version()
    if request.mimetype != "application/offset+octet-stream":
        raise TusError(415, _l("Content-Type must be application/offset+octet-stream"))
    actor = current_actor()
    try:
        claimed = int(request.headers.get("Upload-Offset", ""))
    except ValueError:
        raise TusError(400, _l("Upload-Offset must be a whole number")) from None
    # Read without the write lock, then let go of the database while the bytes arrive.
    set_write_intent(False)
    upload = _load(actor, upload_id)
    if upload.completed_at is not None:
        raise Conflict(_l("%(filename)s: the upload is already complete", filename=upload.filename))
    if claimed != upload.offset:
        raise TusError(
            409,
            _l(
                "Upload-Offset is %(claimed)s but the server has %(offset)s",
                claimed=claimed,
                offset=upload.offset,
            ),
        )
    start, length = upload.offset, upload.length
    db.session.commit()
    written, gone = _append(partial_path(upload_id), start, length - start)
    set_write_intent(True)
    upload = _load(actor, upload_id, for_update=True)
    if upload.offset != start:
        raise TusError(409, _l("the upload moved on while this PATCH was arriving"))
    upload.offset = start + written
    response = Response(status=204)
    response.headers["Upload-Offset"] = str(upload.offset)
    if gone:
        return response
    if upload.offset == upload.length:
        outcomes = _finish(actor, upload)
        refused = [o for o in outcomes if o["status"] == "refused"]
        if refused and len(refused) == len(outcomes):
            db.session.commit()  # the upload is over either way; the refusal is its result
            first = refused[0]
            raise InvalidInput(
                _l(
                    "%(filename)s: %(reason)s",
                    filename=first["filename"],
                    reason=file_reason(first["reason"]),
                ),
                field="file",
            )
    return response


def _finish(actor: Actor, upload: UploadSession) -> list[dict[str, Any]]:
    """Read and index the completed file (heavy work between two transactions)."""
    path = partial_path(upload.id)
    case_id, purpose, filename = upload.case_id, upload.purpose, upload.filename
    upload_id = upload.id
    db.session.commit()  # the bytes are safe; let go of the lock while the worker reads
    set_write_intent(False)
    try:
        if purpose == "dicom":
            prepared = dicom.prepare(path, filename)
            set_write_intent(True)
            case = get_case(actor, case_id)
            dicom.check_may_attach(actor, case)
            outcomes = [o.to_dict() for o in dicom.record(actor, case, prepared)]
        else:
            outcomes = [_finish_ecg(actor, case_id, path, filename)]
    finally:
        path.unlink(missing_ok=True)
    upload = db.session.get(UploadSession, upload_id)
    upload.completed_at = clock.now()
    upload.result = {"files": outcomes}
    return outcomes


def _finish_ecg(actor: Actor, case_id: int, path: Path, filename: str) -> dict[str, Any]:
    """Plan, pair a WFDB part under the case's lock (its own short transaction, so two
    halves arriving at once meet), read in the worker holding no lock, then record."""
    case = get_case(actor, case_id)
    planned = ecg_files.plan(case, path, filename)
    db.session.commit()
    if planned.wfdb_stem and not planned.refused:
        set_write_intent(True)
        case = ecg_files.get_case_locked(actor, case_id)
        ecg_files.check_may_attach(actor, case)
        waiting = ecg_files.pair(actor, case, planned)
        db.session.commit()
        if waiting is not None:
            return waiting.to_dict()
        set_write_intent(False)
    ecg_files.read(planned)
    set_write_intent(True)
    case = get_case(actor, case_id)
    ecg_files.check_may_attach(actor, case)
    return ecg_files.record(actor, case, planned).to_dict()


@bp.route("/<upload_id>", methods=["DELETE"])
@login_required
def terminate(upload_id: str):
    _check_version()
    upload = _load(current_actor(), upload_id, for_update=True)
    partial_path(upload.id).unlink(missing_ok=True)
    db.session.delete(upload)
    return Response(status=204)
