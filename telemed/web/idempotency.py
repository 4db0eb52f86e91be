"""``Idempotency-Key`` for any view: the first response is stored and replayed to retries.

Shared by the JSON API and FHIR so that both honour the header the same way; the
claim-and-store logic lives in services/accounts/idempotency.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Response, make_response, request
from flask_login import current_user

from telemed.services.accounts import idempotency

ReplayHook = Callable[[Response], None]


def idempotent(view=None, *, on_replay: ReplayHook | None = None):
    """Decorate a view; ``on_replay`` may restore headers (e.g. Location) on a replay."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            key = request.headers.get("Idempotency-Key")
            if key is None or not current_user.is_authenticated:
                return view(*args, **kwargs)
            print_ = idempotency.fingerprint(request.method, request.path, request.get_data())
            claimed = idempotency.claim(current_user.id, key, print_)
            if isinstance(claimed, idempotency.StoredResponse):
                response = make_response(claimed.body, claimed.status_code)
                response.content_type = claimed.content_type
                response.headers["Idempotent-Replayed"] = "true"
                if on_replay is not None:
                    on_replay(response)
                return response
            response = make_response(view(*args, **kwargs))
            if response.status_code < 400:
                idempotency.complete(
                    claimed,
                    response.status_code,
                    response.get_data(as_text=True),
                    response.content_type,
                )
            return response

        return wrapped

    return decorator(view) if view is not None else decorator
