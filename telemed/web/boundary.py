"""The request is the transaction: one commit when the handler succeeded, else rollback.

Handlers and services only flush. Here the request's transaction ends; events queued
with ``publish_after_commit`` leave only after a successful commit (telemed/events.py),
and audit events that the transaction could not carry are written last
(services/accounts/audit.py).
"""

from __future__ import annotations

import contextlib
import logging

from flask import Flask, Response, g, request
from sqlalchemy.exc import IntegrityError, OperationalError

from telemed.db import set_write_intent
from telemed.extensions import db
from telemed.services.accounts import audit
from telemed.services.accounts.context import Origin, set_origin

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def channel_of(path: str) -> str:
    for prefix, via in (("/api/", "api"), ("/fhir", "fhir"), ("/cases/", "page")):
        if path.startswith(prefix):
            return via
    return "page"


def init_app(app: Flask) -> None:
    @app.before_request
    def _begin() -> None:
        # SQLite: a writing request takes the write lock when its transaction begins.
        set_write_intent(request.method not in SAFE_METHODS)
        set_origin(
            Origin(
                via=channel_of(request.path),
                ip=request.remote_addr,
                user_agent=request.headers.get("User-Agent"),
            )
        )

    @app.after_request
    def _end(response: Response) -> Response:
        session = db.session
        if g.get("database_unavailable"):
            with contextlib.suppress(Exception):  # the connection is gone; nothing to end
                session.rollback()
            audit.discard_buffered(session)
            return response
        if response.status_code >= 400:
            session.rollback()
            audit.write_buffered(session, failed_status=response.status_code)
            return response
        try:
            session.commit()
        except (IntegrityError, OperationalError) as error:
            session.rollback()
            log.warning(
                "commit refused at the end of %s %s: %s", request.method, request.path, error
            )
            audit.write_buffered(session, failed_status=409)
            from telemed.web.errors import conflict_response

            return conflict_response("the change conflicted with a concurrent one; retry")
        audit.write_buffered(session, failed_status=None)
        return response
