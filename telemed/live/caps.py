"""Per-user caps of the live server shared by every live process through Redis.

Open sockets: a sorted set per user (``live:sockets:<user>``) whose members are the
connection ids and whose scores are the time each stops counting. A process refreshes
its own sockets' scores every third of ``lease_seconds``; a crashed process stops
refreshing, so its sockets stop counting within ``lease_seconds``. Taking a place
removes the lapsed members, counts and adds in one Lua script: two hellos in two
processes cannot both take the last place.

Record messages a minute: a sorted set per user (``live:record:<user>``) of the moments
of the messages of the last 60 s, a sliding window, checked and added in one script.

Times are Redis's own (``TIME``), so the processes' clocks need not agree. Without
Redis the live server keeps its caps in process (one process: the same caps).
"""

from __future__ import annotations

import logging
import secrets

from telemed.fanout import channel_prefix

log = logging.getLogger(__name__)

# KEYS[1] the user's sockets; ARGV: connection id, limit, lease in milliseconds.
TAKE_SOCKET = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
"""

# KEYS: the users' socket sets; ARGV[1] lease in milliseconds, then per key one
# connection id (the same key may come several times, once per socket).
REFRESH_SOCKETS = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', ms + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, lease * 2)
end
return #KEYS
"""

# KEYS[1] the user's record window; ARGV: limit, a unique member. Returns 0 when allowed,
# else the milliseconds until the oldest message of the window leaves it.
TAKE_RECORD = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - 60000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + 60000 - ms)
end
redis.call('ZADD', KEYS[1], ms, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 61000)
return 0
"""


class RedisCaps:
    """The caps in Redis. Each call may raise a Redis error: the caller decides."""

    def __init__(self, url: str, lease_seconds: float, prefix: str | None = None) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.Redis.from_url(url)
        self.prefix = prefix or channel_prefix() + "live:"
        self.lease_ms = max(1000, int(lease_seconds * 1000))
        self._take_socket = self.client.register_script(TAKE_SOCKET)
        self._refresh = self.client.register_script(REFRESH_SOCKETS)
        self._take_record = self.client.register_script(TAKE_RECORD)

    def _sockets(self, user_id: int) -> str:
        return f"{self.prefix}sockets:{user_id}"

    async def take_socket(self, user_id: int, conn: str, limit: int) -> bool:
        taken = await self._take_socket(
            keys=[self._sockets(user_id)], args=[conn, limit, self.lease_ms]
        )
        return bool(taken)

    async def release_socket(self, user_id: int, conn: str) -> None:
        await self.client.zrem(self._sockets(user_id), conn)

    async def refresh(self, sockets: list[tuple[int, str]]) -> None:
        """Keep this process's sockets counted for another lease."""
        if not sockets:
            return
        keys = [self._sockets(user_id) for user_id, _conn in sockets]
        await self._refresh(keys=keys, args=[self.lease_ms, *(conn for _u, conn in sockets)])

    async def take_record(self, user_id: int, limit: int) -> float:
        """0 if the message may be stored, else the seconds until it may."""
        wait_ms = await self._take_record(
            keys=[f"{self.prefix}record:{user_id}"], args=[limit, secrets.token_hex(8)]
        )
        return int(wait_ms) / 1000

    async def close(self) -> None:
        await self.client.aclose()
