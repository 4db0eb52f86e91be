"""Cross-process fan-out of live events: in-process by default, Redis pub/sub at scale.

Publishers (web requests, jobs, live servers) call ``publish``; subscribers (live
servers) register a callback that may be called from any thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Callback = Callable[[str, dict[str, Any]], None]
CHANNEL_PREFIX = "telemed:"


class Fanout(Protocol):
    def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    def subscribe(self, callback: Callback) -> Callable[[], None]: ...

    def close(self) -> None: ...


class InProcessFanout:
    """Delivers to callbacks in this process only: one web-plus-live process."""

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(channel, message)
            except Exception:
                log.exception("fan-out subscriber failed on %s", channel)

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def close(self) -> None:
        with self._lock:
            self._callbacks.clear()


class RedisFanout:
    """Publishes to Redis; subscribers get a background listener thread."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._url = url
        self._local = InProcessFanout()
        self._listener: threading.Thread | None = None
        self._pubsub = None
        self._lock = threading.Lock()

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        self._redis.publish(CHANNEL_PREFIX + channel, json.dumps(message, default=str))

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        unsubscribe = self._local.subscribe(callback)
        with self._lock:
            if self._listener is None:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                self._pubsub.psubscribe(CHANNEL_PREFIX + "*")
                self._listener = threading.Thread(
                    target=self._listen, name="telemed-fanout", daemon=True
                )
                self._listener.start()
        return unsubscribe

    def _listen(self) -> None:
        assert self._pubsub is not None
        for item in self._pubsub.listen():
            if item.get("type") != "pmessage":
                continue
            channel = item["channel"].decode()[len(CHANNEL_PREFIX) :]
            try:
                message = json.loads(item["data"])
            except ValueError:
                log.warning("dropping malformed fan-out message on %s", channel)
                continue
            self._local.publish(channel, message)

    def close(self) -> None:
        self._local.close()
        if self._pubsub is not None:
            self._pubsub.close()


_fanout: Fanout | None = None
_fanout_lock = threading.Lock()


def get_fanout() -> Fanout:
    """The process-wide fan-out, chosen by TELEMED_REDIS_URL."""
    global _fanout
    with _fanout_lock:
        if _fanout is None:
            from telemed.config import env

            url = env("REDIS_URL")
            _fanout = RedisFanout(url) if url else InProcessFanout()
        return _fanout


def set_fanout(fanout: Fanout | None) -> None:
    global _fanout
    with _fanout_lock:
        if _fanout is not None and fanout is not _fanout:
            _fanout.close()
        _fanout = fanout
