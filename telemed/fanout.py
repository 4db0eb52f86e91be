"""Cross-process fan-out of live events: in-process by default, Redis pub/sub at scale.

Publishers (web requests, jobs, live servers) call ``publish`` (through
``events.publish_after_commit``). Subscribers are the live servers: an asyncio
:class:`ChannelSubscriber` follows exactly the channels its sockets need (``room:<id>``,
``user:<id>``) and hands each message to the server's event loop. Redis only notifies:
after a lost connection the subscriber says so, and the live server reads what it may
have missed from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

Callback = Callable[[str, dict[str, Any]], None]
CHANNEL_PREFIX = "telemed:"


def channel_prefix() -> str:
    """Redis channels are global to a server: TELEMED_FANOUT_PREFIX keeps deployments (or
    test runs) that share one Redis apart."""
    import os

    return os.environ.get("TELEMED_FANOUT_PREFIX") or CHANNEL_PREFIX


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
        self._down = False  # said once per outage, not once per message

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            self._redis.publish(channel_prefix() + channel, json.dumps(message, default=str))
        except Exception as error:  # redis' errors and OSError: a nudge lost, not a request
            if not self._down:
                self._down = True
                log.warning(
                    "Redis at %s is unreachable (%s): live nudges are not sent until it is "
                    "back; sockets catch up from the database",
                    redacted(self._url),
                    error,
                )
            return
        if self._down:
            self._down = False
            log.info("Redis at %s is reachable again", redacted(self._url))

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        unsubscribe = self._local.subscribe(callback)
        with self._lock:
            if self._listener is None:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                self._pubsub.psubscribe(channel_prefix() + "*")
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
            channel = item["channel"].decode()[len(channel_prefix()) :]
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
            url = _configured_redis_url()
            _fanout = RedisFanout(url) if url else InProcessFanout()
        return _fanout


def set_fanout(fanout: Fanout | None) -> None:
    global _fanout
    with _fanout_lock:
        if _fanout is not None and fanout is not _fanout:
            _fanout.close()
        _fanout = fanout


def redacted(url: str) -> str:
    """A Redis URL fit for a log line: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit(parts._replace(netloc=netloc))


def redis_unreachable(url: str, timeout: float = 2.0) -> str | None:
    """Why Redis at ``url`` cannot be reached now, or None when it answers a PING."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except Exception as error:  # whatever stops the PING is the reason to report
        return str(error) or type(error).__name__
    finally:
        client.close()
    return None


def settle_at_start(config: dict[str, Any]) -> str:
    """Choose the fan-out as a process starts: Redis when configured and reachable;
    unreachable, in-process with one clear log line, or (``TELEMED_REDIS_REQUIRED``)
    a RuntimeError that says why. Returns "redis" or "in-process"."""
    url = config.get("TELEMED_REDIS_URL")
    if not url:
        return "in-process"
    reason = redis_unreachable(url)
    if reason is None:
        return "redis"
    if config.get("TELEMED_REDIS_REQUIRED"):
        raise RuntimeError(
            f"Redis at {redacted(url)} is unreachable ({reason}) and TELEMED_REDIS_REQUIRED=1"
        )
    log.warning(
        "Redis at %s is unreachable (%s): running in-process; live events reach only "
        "this process's sockets",
        redacted(url),
        reason,
    )
    config["TELEMED_REDIS_URL"] = None
    set_fanout(InProcessFanout())
    return "in-process"


def _configured_redis_url() -> str | None:
    """The app's TELEMED_REDIS_URL when an app is at hand, else the environment's."""
    from flask import current_app, has_app_context

    if has_app_context():
        return current_app.config.get("TELEMED_REDIS_URL")
    from telemed.config import env

    return env("REDIS_URL")


# -- asyncio subscribers for the live server ---------------------------------------------

OnMessage = Callable[[str, dict[str, Any]], None]
OnReconnect = Callable[[], Awaitable[None] | None]


class ChannelSubscriber(Protocol):
    async def start(self, on_message: OnMessage, on_reconnect: OnReconnect) -> None: ...

    async def add(self, channel: str) -> None: ...

    async def remove(self, channel: str) -> None: ...

    async def close(self) -> None: ...


class InProcessSubscriber:
    """Follows the in-process fan-out: publishers in other threads of this process (web
    requests, jobs, the live server's own workers) reach the loop thread-safely."""

    def __init__(self, fanout: InProcessFanout | None = None) -> None:
        self._fanout = fanout
        self._channels: set[str] = set()
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self, on_message: OnMessage, on_reconnect: OnReconnect) -> None:
        loop = asyncio.get_running_loop()
        fanout = self._fanout or get_fanout()

        def deliver(channel: str, message: dict[str, Any]) -> None:
            if channel in self._channels and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(on_message, channel, message)

        self._unsubscribe = fanout.subscribe(deliver)

    async def add(self, channel: str) -> None:
        self._channels.add(channel)

    async def remove(self, channel: str) -> None:
        self._channels.discard(channel)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


class RedisSubscriber:
    """An asyncio Redis subscriber that holds only the channels asked for.

    A lost Redis connection is retried with back-off; on reconnecting, every channel is
    subscribed again and ``on_reconnect`` runs so the caller can catch up from the database.
    """

    def __init__(self, url: str, *, retry_max: float = 5.0) -> None:
        self._url = url
        self._prefix = channel_prefix()
        self._retry_max = retry_max
        self._channels: set[str] = set()
        self._pubsub = None
        self._client = None
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self, on_message: OnMessage, on_reconnect: OnReconnect) -> None:
        self._task = asyncio.create_task(self._run(on_message, on_reconnect), name="redis-sub")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _connect(self) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(self._url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        # A dummy channel keeps the connection in subscribe mode even with no room open.
        await self._pubsub.subscribe(*self._prefixed({"_live", *self._channels}))

    def _prefixed(self, channels) -> list[str]:
        return [self._prefix + c for c in channels]

    async def _run(self, on_message: OnMessage, on_reconnect: OnReconnect) -> None:
        delay = 0.2
        first = True
        while True:
            try:
                async with self._lock:
                    await self._connect()
                self._ready.set()
                if not first:
                    log.info("redis subscriber reconnected; catching up from the database")
                    result = on_reconnect()
                    if asyncio.iscoroutine(result):
                        await result
                first, delay = False, 0.2
                async for item in self._pubsub.listen():
                    if item.get("type") != "message":
                        continue
                    channel = item["channel"].decode()[len(self._prefix) :]
                    try:
                        message = json.loads(item["data"])
                    except ValueError:
                        log.warning("dropping malformed fan-out message on %s", channel)
                        continue
                    on_message(channel, message)
                raise ConnectionError("redis subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("redis subscriber lost its connection (%s); retrying", error)
                await self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)

    async def _drop(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        with contextlib.suppress(Exception):
            if pubsub is not None:
                await pubsub.aclose()
        with contextlib.suppress(Exception):
            if client is not None:
                await client.aclose()

    async def add(self, channel: str) -> None:
        if channel in self._channels:
            return
        self._channels.add(channel)
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(Exception):  # the reconnect subscribes it again
                    await self._pubsub.subscribe(self._prefix + channel)

    async def remove(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(self._prefix + channel)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self._drop()


def channel_subscriber(redis_url: str | None) -> ChannelSubscriber:
    return RedisSubscriber(redis_url) if redis_url else InProcessSubscriber()
