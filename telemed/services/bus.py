"""The in-transaction message bus: a service emits a domain event and the handlers that
subscribed to its type run at once, in the caller's transaction, in subscription order.
A handler's error rolls back the whole request, as if the emitter had failed.

Subscriptions are made once at start-up by `telemed.services.wiring.connect_areas`
(the application factory calls it). Emitting before that is a programming error, not a
silent no-op: an event nobody heard would lose a referral's state change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from telemed.domain.events import DomainEvent

Handler = Callable[[Any], None]

_handlers: defaultdict[type, list[Handler]] = defaultdict(list)
_connected = False


def subscribe(event_type: type, handler: Handler) -> None:
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def mark_connected() -> None:
    global _connected
    _connected = True


def emit(event: DomainEvent) -> None:
    if not _connected:
        raise RuntimeError("domain events emitted before the areas were connected")
    for handler in list(_handlers[type(event)]):
        handler(event)


def handlers_of(event_type: type) -> list[Handler]:
    return list(_handlers[event_type])
