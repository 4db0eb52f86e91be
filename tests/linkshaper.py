"""A shaping TCP proxy that plays a township's link between a client and a test server.

netem is not available in the test machine's kernel, so the link is emulated in user
space: every byte crossing the proxy waits for its turn on a shared line of ``rate``
bytes a second in each direction, then ``delay`` seconds of propagation. A lost segment
is played as what the sender sees, a stall of that connection (the retransmission),
since the proxy's own TCP legs never lose anything. Outages follow a schedule: in a
``silence`` nothing moves and connections stay open (the bytes wait, as TCP would keep
retrying); in a ``reset`` every open connection is reset (RST) and new ones are reset
as soon as they are accepted, until the link returns.

The proxy runs its own event loop on a thread, so synchronous tests (requests,
Playwright) and asyncio tests both put it in front of a server::

    with LinkShaper(server_port, RURAL) as link:
        requests.get(f"http://127.0.0.1:{link.port}/")
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field, replace

SEGMENT = 1448  # one TCP segment's payload on an Ethernet path


@dataclass(frozen=True)
class Outages:
    """A link cut for ``length`` seconds every ``every`` seconds, the first at ``first``."""

    every: float
    length: float
    mode: str = "silence"  # or "reset"
    first: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("silence", "reset"):
            raise ValueError(f"outage mode must be silence or reset, not {self.mode!r}")
        if not 0 < self.length < self.every:
            raise ValueError("an outage must be shorter than its period")

    def down_until(self, elapsed: float) -> float | None:
        """When the outage covering ``elapsed`` ends (seconds since start), or None."""
        first = self.every - self.length if self.first is None else self.first
        if elapsed < first:
            return None
        start = first + ((elapsed - first) // self.every) * self.every
        return start + self.length if elapsed < start + self.length else None


@dataclass(frozen=True)
class Link:
    """One direction's figures apply to each direction separately."""

    rate: float | None = None  # bytes per second; None: unlimited
    delay: float = 0.0  # one way, seconds
    loss: float = 0.0  # share of segments lost, each played as a stall
    outages: Outages | None = None
    seed: int = 1

    @property
    def rtt(self) -> float:
        return 2 * self.delay

    @property
    def stall(self) -> float:
        """What one lost segment costs its connection: a retransmission after about an
        RTT more (fast retransmit), never under Linux's 200 ms minimum timeout."""
        return max(0.2, self.rtt)

    def with_outages(self, outages: Outages | None) -> Link:
        return replace(self, outages=outages)


CLEAN = Link()
# The measured link: 2 Mbit/s each way, 150 ms one way, 2% loss.
RURAL = Link(rate=2_000_000 / 8, delay=0.150, loss=0.02)


@dataclass
class Counters:
    connections: int = 0
    resets: int = 0
    up_bytes: int = 0  # client to server, delivered
    down_bytes: int = 0
    segments: int = 0  # segments put on the line, both directions
    stalls: int = 0  # of which lost (each played as a stall)
    # Bytes read from one side but never delivered to the other because a reset cut them.
    up_dropped: int = 0
    down_dropped: int = 0


@dataclass
class _Line:
    """One direction of the shared link: when it is next free to put a byte on the wire."""

    rate: float | None
    free_at: float = 0.0

    def send(self, size: int, now: float) -> float:
        """Take the line for ``size`` bytes; returns when their last byte has left."""
        if self.rate is None:
            return now
        start = max(now, self.free_at)
        self.free_at = start + size / self.rate
        return self.free_at


@dataclass(eq=False)
class _Leg:
    """One connection through the proxy."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)
    closed: bool = False


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN, as a middlebox that lost the flow does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class LinkShaper:
    """A TCP proxy on 127.0.0.1 to ``target`` that shapes traffic as ``link`` says."""

    def __init__(self, target_port: int, link: Link = CLEAN, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.link = link
        self.counters = Counters()
        self.port = 0
        self._random = random.Random(link.seed)
        self._up = _Line(link.rate)
        self._down = _Line(link.rate)
        self._legs: set[_Leg] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._started = 0.0
        self._cut_until = 0.0  # a cut asked for by a test (reset mode), loop time
        self._schedule: asyncio.Task | None = None
        self._quiet_until = 0.0  # a silence asked for by a test, loop time

    # -- running -------------------------------------------------------------------

    def start(self) -> LinkShaper:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> LinkShaper:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset_all(self, for_seconds: float = 0.0) -> None:
        """Reset every open connection now; refuse new ones for ``for_seconds``."""

        def cut() -> None:
            self._cut_until = self._loop.time() + for_seconds
            self._reset_open()

        self._loop.call_soon_threadsafe(cut)

    def silence(self, for_seconds: float) -> None:
        """Let nothing cross for ``for_seconds``; open connections stay open."""

        def cut() -> None:
            self._quiet_until = self._loop.time() + for_seconds

        self._loop.call_soon_threadsafe(cut)

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # -- inside the loop -------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._started = time.monotonic()
        if self.link.outages is not None and self.link.outages.mode == "reset":
            self._schedule = self._loop.create_task(self._reset_on_schedule())

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._schedule is not None:
            self._schedule.cancel()
        for leg in list(self._legs):
            self._end(leg)
        await asyncio.sleep(0.01)

    def _down_until(self) -> float | None:
        """Loop time at which the current outage ends, or None while the link is up."""
        now = self._loop.time()
        if now < self._cut_until or now < self._quiet_until:
            return max(self._cut_until, self._quiet_until)
        outages = self.link.outages
        if outages is None:
            return None
        ends = outages.down_until(time.monotonic() - self._started)
        return None if ends is None else now + (ends - (time.monotonic() - self._started))

    async def _reset_on_schedule(self) -> None:
        outages = self.link.outages
        assert outages is not None
        while True:
            elapsed = time.monotonic() - self._started
            first = outages.every - outages.length if outages.first is None else outages.first
            if elapsed < first:
                wait = first - elapsed
            else:
                wait = outages.every - ((elapsed - first) % outages.every)
            await asyncio.sleep(wait + 0.001)
            self._reset_open()

    def _reset_open(self) -> None:
        for leg in list(self._legs):
            self.counters.resets += 1
            self._end(leg, reset=True)

    def _end(self, leg: _Leg, *, reset: bool = False) -> None:
        if leg.closed:
            return
        leg.closed = True
        self._legs.discard(leg)
        for writer in (leg.client, leg.server):
            if writer is None:
                continue
            if reset:
                _reset(writer)
            else:
                writer.close()
        for task in leg.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters.connections += 1
        leg = _Leg(client=writer)
        if self._down_until() is not None and self._is_reset_outage():
            self.counters.resets += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        leg.server = up_writer
        self._legs.add(leg)
        # Each direction: a reader that puts segments on the line and a writer that hands
        # them over once they have crossed it; the queue bounds what is in flight.
        up: asyncio.Queue = asyncio.Queue(maxsize=64)
        down: asyncio.Queue = asyncio.Queue(maxsize=64)
        leg.tasks = [
            self._loop.create_task(self._read(leg, reader, up, self._up, "up")),
            self._loop.create_task(self._deliver(leg, up_writer, up, "up")),
            self._loop.create_task(self._read(leg, up_reader, down, self._down, "down")),
            self._loop.create_task(self._deliver(leg, writer, down, "down")),
        ]

    def _is_reset_outage(self) -> bool:
        if self._loop.time() < self._cut_until:
            return True
        return self.link.outages is not None and self.link.outages.mode == "reset"

    async def _read(self, leg, reader, queue: asyncio.Queue, line: _Line, way: str) -> None:
        last = 0.0
        try:
            while True:
                data = await reader.read(SEGMENT * 4)
                if not data:
                    await queue.put((last, b""))
                    return
                for start in range(0, len(data), SEGMENT):
                    segment = data[start : start + SEGMENT]
                    while (ends := self._down_until()) is not None:
                        await asyncio.sleep(max(0.005, ends - self._loop.time()))
                    now = self._loop.time()
                    arrive = line.send(len(segment), now) + self.link.delay
                    self.counters.segments += 1
                    if self.link.loss and self._random.random() < self.link.loss:
                        self.counters.stalls += 1
                        arrive += self.link.stall
                    last = max(last, arrive)  # TCP hands bytes over in order
                    await queue.put((last, segment))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if leg.closed:
                self._count_dropped(queue, way)

    async def _deliver(self, leg, writer, queue: asyncio.Queue, way: str) -> None:
        try:
            while True:
                at, segment = await queue.get()
                wait = at - self._loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                while (ends := self._down_until()) is not None:
                    await asyncio.sleep(max(0.005, ends - self._loop.time()))
                if not segment:
                    if writer.can_write_eof():
                        writer.write_eof()
                    if all(t.done() or t is asyncio.current_task() for t in leg.tasks):
                        self._end(leg)
                    return
                writer.write(segment)
                await writer.drain()
                if way == "up":
                    self.counters.up_bytes += len(segment)
                else:
                    self.counters.down_bytes += len(segment)
        except (ConnectionError, asyncio.CancelledError):
            self._end(leg, reset=True)
        finally:
            if leg.closed:
                self._count_dropped(queue, way)

    def _count_dropped(self, queue: asyncio.Queue, way: str) -> None:
        dropped = 0
        while not queue.empty():
            dropped += len(queue.get_nowait()[1])
        if way == "up":
            self.counters.up_dropped += dropped
        else:
            self.counters.down_dropped += dropped
