"""Replaying requests retried with the same ``Idempotency-Key``.

The key is claimed by inserting its row inside the request's transaction; a concurrent
retry waits on (PostgreSQL) or queues behind (SQLite) that row's unique index and then
finds the stored response. A failed request rolls back its claim, so a retry runs again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from telemed.errors import Conflict, InvalidInput
from telemed.extensions import db
from telemed.models.idempotency import IdempotencyRecord

MAX_KEY = 200


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str
    content_type: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def _stored(record: IdempotencyRecord, print_: str) -> StoredResponse:
    if record.fingerprint != print_:
        raise InvalidInput(
            _l("this Idempotency-Key was already used for a different request"),
            field="Idempotency-Key",
        )
    if record.status_code is None:
        raise Conflict(_l("a request with this Idempotency-Key is still in progress"))
    return StoredResponse(record.status_code, record.response_body or "", record.content_type or "")


def claim(user_id: int, key: str, print_: str) -> IdempotencyRecord | StoredResponse:
    """Either the stored response of an earlier request, or a fresh claim to fill in."""
    if not key or len(key) > MAX_KEY:
        raise InvalidInput(
            _l("Idempotency-Key must be 1 to %(limit)s characters", limit=MAX_KEY),
            field="Idempotency-Key",
        )
    query = select(IdempotencyRecord).where(
        IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
    )
    existing = db.session.execute(query).scalar_one_or_none()
    if existing is not None:
        return _stored(existing, print_)
    record = IdempotencyRecord(user_id=user_id, key=key, fingerprint=print_)
    try:
        with db.session.begin_nested():
            db.session.add(record)
            db.session.flush()
    except IntegrityError:
        # A concurrent request with this key committed first.
        existing = db.session.execute(query.execution_options(populate_existing=True)).scalar_one()
        return _stored(existing, print_)
    return record


def complete(record: IdempotencyRecord, status_code: int, body: str, content_type: str) -> None:
    record.status_code = status_code
    record.response_body = body
    record.content_type = content_type
    db.session.flush()
