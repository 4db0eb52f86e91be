"""Group commit: the live server stores the plain record messages of all its rooms
(chat, marks, calipers) many to a transaction.

One transaction per message caps a process at one durable commit per message. Here one
writer task takes every message queued in this process (up to ``limit``) and stores them
with :func:`consults.append_plain_messages` in one transaction: each message still gets
its own per-room sequence number, and its sender hears of it only after that commit.
While one batch is being stored the next gathers, so batches grow with the load and a
lone message waits for nobody. The blocking work runs in the store's writer threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from telemed.live.store import Store
from telemed.services.consults import consults
from telemed.services.consults.consults import NewEvent

log = logging.getLogger(__name__)

Outcome = dict[str, Any] | Exception  # the stored frame, or what refused the message


@dataclass
class BatchStats:
    """What the writer did since it started (for operators and tests)."""

    received: int = 0  # messages handed to the writer
    batches: int = 0  # batches stored (a batch that fell back to one by one counts once)
    largest: int = 0  # the most messages in one batch
    fallbacks: int = 0  # batches whose one transaction failed and went one by one


@dataclass(eq=False)
class _Queued:
    event: NewEvent
    answer: asyncio.Future[dict[str, Any]]


class GroupCommit:
    def __init__(self, store: Store, limit: int) -> None:
        self.store = store
        self.limit = max(1, limit)
        self.stats = BatchStats()
        self._queue: deque[_Queued] = deque()
        self._wake = asyncio.Event()

    @property
    def queued(self) -> int:
        """Messages waiting for the next batch."""
        return len(self._queue)

    async def store_event(self, event: NewEvent) -> dict[str, Any]:
        """Store ``event`` with the next batch and return its frame once committed; raises
        what refused it (a Conflict for an ended room, an IntegrityError for a resend)."""
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(event, answer))
        self.stats.received += 1
        self._wake.set()
        return await answer

    async def run(self) -> None:
        """The writer: one batch at a time, so a room's batches commit in the order taken."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                count = min(self.limit, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                try:
                    await self._commit(batch)
                except Exception as error:  # the writer must outlive a bug; no sender hangs
                    log.exception("group commit failed")
                    self._answer(batch, [error] * len(batch))

    async def _commit(self, batch: list[_Queued]) -> None:
        events = [queued.event for queued in batch]
        try:
            outcomes: list[Outcome] = list(
                await self.store.write(consults.append_plain_messages, events)
            )
        except Exception:
            # One bad message (a resend hitting the unique index) or a failed commit must
            # not sink the others: store them one by one, each answered on its own.
            log.warning("group commit of %d messages failed; one by one", len(batch), exc_info=True)
            self.stats.fallbacks += 1
            outcomes = [await self._store_alone(event) for event in events]
        self.stats.batches += 1
        self.stats.largest = max(self.stats.largest, len(batch))
        self._answer(batch, outcomes)

    @staticmethod
    def _answer(batch: list[_Queued], outcomes: list[Outcome]) -> None:
        # In the batch's order: each room's senders wake in sequence order.
        for queued, outcome in zip(batch, outcomes, strict=True):
            if queued.answer.done():
                continue  # its sender's handler is gone (the server is stopping)
            if isinstance(outcome, Exception):
                queued.answer.set_exception(outcome)
            else:
                queued.answer.set_result(outcome)

    async def _store_alone(self, event: NewEvent) -> Outcome:
        try:
            (outcome,) = await self.store.write(consults.append_plain_messages, [event])
        except Exception as error:
            return error
        return outcome
