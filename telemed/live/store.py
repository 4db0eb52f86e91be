"""Blocking database work of the live server, kept off its event loop.

Each call runs in a worker thread (writes in the store's own pool, reads through
``asyncio.to_thread``) inside its own app context and
is one transaction: it commits once on success (then the after-commit nudges leave) and
rolls back on error. The live server is an entry point like a web request.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from flask import Flask

from telemed.db import write_intent
from telemed.extensions import db
from telemed.services.accounts.context import Origin, set_origin

T = TypeVar("T")


class Store:
    def __init__(self, app: Flask) -> None:
        self.app = app
        # SQLite has one writer at a time; threads that contend for its lock back off in
        # sleeps of up to 100 ms. One writing thread per process queues them instead.
        # PostgreSQL takes row locks, so writers of different rooms run side by side.
        sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
        self._writers = ThreadPoolExecutor(
            max_workers=1 if sqlite else app.config.get("TELEMED_LIVE_DB_WRITERS", 8),
            thread_name_prefix="live-db-write",
        )

    def close(self) -> None:
        self._writers.shutdown(wait=False, cancel_futures=True)

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
        work = functools.partial(self._in_transaction, True, Origin("live", ip=_ip), call)
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writers, context.run, work)

    async def read(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        call = functools.partial(fn, *args, **kw)
        return await asyncio.to_thread(self._in_transaction, False, Origin("live"), call)
