"""Blocking database work of the live server, kept off its event loop.

Each call runs in a worker thread (``asyncio.to_thread``) inside its own app context and
is one transaction: it commits once on success (then the after-commit nudges leave) and
rolls back on error. The live server is an entry point like a web request.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

from telemed.db import write_intent
from telemed.extensions import db
from telemed.services.context import Origin, set_origin

T = TypeVar("T")


class Store:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def _in_transaction(self, write: bool, origin: Origin, fn: Callable[[], T]) -> T:
        with self.app.app_context():
            set_origin(origin)
            with write_intent(write):
                try:
                    result = fn()
                    db.session.commit()
                    return result
                except BaseException:
                    db.session.rollback()
                    raise
                finally:
                    db.session.remove()

    async def write(self, fn: Callable[..., T], *args: Any, _ip: str | None = None, **kw) -> T:
        call = functools.partial(fn, *args, **kw)
        return await asyncio.to_thread(self._in_transaction, True, Origin("live", ip=_ip), call)

    async def read(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        call = functools.partial(fn, *args, **kw)
        return await asyncio.to_thread(self._in_transaction, False, Origin("live"), call)
