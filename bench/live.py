"""Live consult benchmark: the real live server against a bare websockets broadcast server.

    .venv/bin/python bench/live.py [--rooms 100] [--per-room 3] [--rate 20] [--seconds 20]
                                   [--idle 2000] [--database-url URL]

Both servers run as their own processes on this machine and get the same load from one
client process: ``rooms`` rooms of ``per-room`` clients, each client sending ``rate`` chat
messages a second for ``seconds`` seconds. The real server checks a ticket per socket,
stores every message in the database with its sequence number (by group commit: what is
queued goes in one transaction) before it fans out, and acknowledges it; the bare server
only relays each frame to the other sockets of the room. Printed: messages delivered per
second (to the other clients), p50 and p99 latency from send to delivery, the ratios, the
resident memory each server adds per idle connection at ``idle`` connections, and how
many messages the real server's transactions stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ORIGIN = "http://127.0.0.1:5000"


# -- the bare server: what websockets does with nothing else to do ---------------------------


def bare_server(port: int) -> None:
    from websockets.asyncio.server import broadcast, serve

    rooms: dict[str, set] = {}

    async def handler(ws) -> None:
        room = rooms.setdefault(ws.request.path, set())
        room.add(ws)
        try:
            async for message in ws:
                broadcast([peer for peer in room if peer is not ws], message)
        finally:
            room.discard(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression=None, max_queue=16):
            print("bare server ready", flush=True)
            await asyncio.Future()

    asyncio.run(main())


# -- setting up the real one ----------------------------------------------------------------


def prepare(database_url: str | None, instance: Path, rooms: int, idle_rooms: int):
    """A migrated database with ``rooms + idle_rooms`` scheduled consults; returns the app
    settings the servers need and a ticket factory."""
    os.environ["TELEMED_INSTANCE_DIR"] = str(instance)
    os.environ.setdefault("TELEMED_SECRET_KEY", "bench-" + os.urandom(8).hex())
    url = database_url or f"sqlite:///{instance / 'bench.sqlite'}"
    os.environ["TELEMED_DATABASE_URL"] = url
    from flask_migrate import upgrade

    from telemed import create_app
    from telemed.extensions import db
    from tests import factories
    from tests.live_support import _scheduled_consult

    app = create_app()
    ctx = app.app_context()
    ctx.push()
    upgrade()
    world = factories.build_world()
    db.session.commit()
    cases = [_scheduled_consult(world, "gp_ts1", "card1", False) for _ in range(rooms + idle_rooms)]
    case_ids = [c.id for c in cases]
    return app, world, case_ids, url


def issue_tickets(world, case_ids: list[int], per_room: int) -> list[tuple[int, list[str]]]:
    from telemed.extensions import db
    from telemed.services.accounts.context import actor_of
    from telemed.services.consults import consults

    # The specialist, the doctor, and the doctor's second screen (both may chat).
    people = [world.user("card1"), world.user("gp_ts1"), world.user("gp_ts1")]
    out = []
    for case_id in case_ids:
        tickets = []
        room_id = None
        for i in range(per_room):
            actor = actor_of(people[i % len(people)])
            token, _exp, room, _role = consults.issue_room_ticket(actor, case_id, None)
            room_id = room.id
            tickets.append(token)
        out.append((room_id, tickets))
    db.session.commit()
    return out


def start(cmd: list[str], env: dict, ready: str) -> subprocess.Popen:
    log = tempfile.NamedTemporaryFile(prefix="bench-live-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ready in Path(log.name).read_text(errors="replace"):
            proc.log_path = log.name  # type: ignore[attr-defined]
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(Path(log.name).read_text()[-3000:])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- the load ------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.sent = 0
        self.delivered = 0
        self.latencies: list[float] = []
        self.errors = 0
        self.closed: dict[str, int] = {}


async def run_load(
    url_of_room, rooms: list[tuple[int, list[str]]], rate: float, seconds: float, real: bool
) -> tuple[Tally, float]:
    from websockets.asyncio.client import connect

    tally = Tally()
    clients = []
    for room_id, tickets in rooms:
        for i, ticket in enumerate(tickets):
            ws = await connect(url_of_room(room_id), origin=ORIGIN, compression=None, max_queue=64)
            if real:
                await ws.send(json.dumps({"type": "hello", "v": 1, "ticket": ticket}))
                while json.loads(await ws.recv()).get("type") != "replayed":
                    pass
            clients.append((f"{room_id}-{i}", ws))

    stop_at = time.perf_counter() + seconds + 0.5
    start_at = time.perf_counter() + 0.5

    async def reader(name: str, ws) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if real:
                    if frame.get("type") != "event" or frame.get("kind") != "chat":
                        continue
                    text = frame["body"]["text"]
                else:
                    text = frame["text"]
                sender, _, stamp = text.partition("|")
                if sender == name:
                    continue  # the real server echoes to the sender too: count others only
                tally.delivered += 1
                tally.latencies.append(time.perf_counter() - float(stamp))
        except Exception as error:
            tally.closed[type(error).__name__] = tally.closed.get(type(error).__name__, 0) + 1

    async def sender(name: str, ws) -> None:
        interval = 1 / rate
        n = 0
        await asyncio.sleep(
            max(0, start_at - time.perf_counter()) + (hash(name) % 1000) / 1000 * interval
        )
        while time.perf_counter() < stop_at:
            text = f"{name}|{time.perf_counter()!r}"
            message = (
                {"type": "send", "id": f"{name}-{n}", "kind": "chat", "body": {"text": text}}
                if real
                else {"text": text}
            )
            try:
                await ws.send(json.dumps(message))
            except Exception:
                tally.errors += 1
                return
            tally.sent += 1
            n += 1
            next_at = start_at + n * interval
            await asyncio.sleep(max(0, next_at - time.perf_counter()))

    readers = [asyncio.create_task(reader(n, ws)) for n, ws in clients]
    began = time.perf_counter()
    await asyncio.gather(*(sender(n, ws) for n, ws in clients))
    # Let the backlog drain (bounded), then stop.
    expected = tally.sent * (len(rooms[0][1]) - 1)
    drain_deadline = time.perf_counter() + 30
    while tally.delivered < expected and time.perf_counter() < drain_deadline:
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - began
    for _n, ws in clients:
        await ws.close()
    for task in readers:
        task.cancel()
    return tally, elapsed


async def open_idle(url_of_room, batches, real: bool) -> list:
    """Open idle sockets batch by batch; each batch gets fresh tickets (they live 60 s)
    and connects concurrently."""
    from websockets.asyncio.client import connect

    async def one(room_id, ticket):
        ws = await connect(url_of_room(room_id), origin=ORIGIN, compression=None)
        if real:
            await ws.send(json.dumps({"type": "hello", "v": 1, "ticket": ticket}))
            while json.loads(await ws.recv()).get("type") != "replayed":
                pass
        return ws

    sockets = []
    for batch in batches:
        group = [(room_id, t) for room_id, tickets in batch() for t in tickets]
        for i in range(0, len(group), 50):
            sockets += await asyncio.gather(*(one(r, t) for r, t in group[i : i + 50]))
    return sockets


def _take(rooms, total: int):
    """(room, tickets, how many) until ``total`` sockets are planned."""
    left = total
    for room, tickets in rooms:
        if left <= 0:
            return
        k = min(left, len(tickets))
        left -= k
        yield room, tickets, k


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _empty(database_url: str) -> bool:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(database_url)
    try:
        return not inspect(engine).get_table_names()
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--per-room", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--database-url", default=os.environ.get("TELEMED_BENCH_DATABASE_URL"))
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return

    from tests.live_support import free_port

    if args.database_url and not _empty(args.database_url):
        sys.exit(
            f"{args.database_url} already holds tables: bench/live.py builds its own "
            "consortium and needs an empty database"
        )
    instance = Path(tempfile.mkdtemp(prefix="bench-live-"))
    idle_rooms = max(1, -(-args.idle // 20))
    _app, world, case_ids, db_url = prepare(args.database_url, instance, args.rooms, idle_rooms)

    # Tickets live a minute: each phase gets fresh ones just before it connects.
    def load_rooms():
        return issue_tickets(world, case_ids[: args.rooms], args.per_room)

    idle_cases = case_ids[args.rooms :]
    plan = list(_take([(case_id, range(20)) for case_id in idle_cases], args.idle))

    def idle_batches():
        """Ten rooms (200 sockets) at a time, each with fresh tickets."""
        for i in range(0, len(plan), 10):
            part = plan[i : i + 10]

            def batch(part=part):
                rooms = issue_tickets(world, [case_id for case_id, _r, _k in part], 20)
                return [
                    (room, tickets[:k])
                    for (room, tickets), (_c, _r, k) in zip(rooms, part, strict=True)
                ]

            yield batch

    env = {
        **os.environ,
        "TELEMED_DATABASE_URL": db_url,
        "TELEMED_ALLOWED_ORIGINS": ORIGIN,
        "TELEMED_LIVE_RATE_PER_SECOND": "1000",
        "TELEMED_LIVE_BURST": "1000",
        "TELEMED_LIVE_CLIENT_QUEUE": "4096",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("TELEMED_REDIS_URL", None)
    results = {}
    for name in ("bare", "telemed"):
        port = free_port()
        if name == "bare":
            proc = start([sys.executable, __file__, "--bare-server", str(port)], env, "ready")

            def url_of_room(room_id, port=port):
                return f"ws://127.0.0.1:{port}/room/{room_id}"

        else:
            cmd = [sys.executable, "-m", "telemed.live", "--port", str(port)]
            proc = start(cmd, env, "live server on")

            def url_of_room(room_id, port=port):
                return f"ws://127.0.0.1:{port}/live/rooms/{room_id}"

        try:
            tally, elapsed = asyncio.run(
                run_load(url_of_room, load_rooms(), args.rate, args.seconds, name == "telemed")
            )
            before = rss_kib(proc.pid)

            async def idle(url_of_room=url_of_room, name=name, proc=proc):
                sockets = await open_idle(url_of_room, idle_batches(), name == "telemed")
                await asyncio.sleep(2)
                after = rss_kib(proc.pid)
                for ws in sockets:
                    await ws.close()
                return len(sockets), after

            count, after = asyncio.run(idle())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        for line in Path(proc.log_path).read_text(errors="replace").splitlines():
            if "group commit:" in line:  # how many messages each transaction stored
                print(line.partition("group commit: ")[2], flush=True)
        lat = tally.latencies
        print(
            f"{name}: delivered {tally.delivered:,} of {tally.sent:,} sent in {elapsed:.1f} s",
            flush=True,
        )
        results[name] = {
            "sent": tally.sent,
            "delivered": tally.delivered,
            "rate": tally.delivered / elapsed,
            "p50": pct(lat, 0.50) * 1000,
            "p99": pct(lat, 0.99) * 1000,
            "mean": (statistics.fmean(lat) * 1000) if lat else float("nan"),
            "idle_kib": (after - before) / max(1, count),
            "idle_count": count,
            "errors": tally.errors,
            "elapsed": elapsed,
        }
    db_kind = db_url.split(":", 1)[0].split("+")[0]
    offered = args.rooms * args.per_room * args.rate * (args.per_room - 1)
    print(
        f"\nLive consult: {args.rooms} rooms x {args.per_room} clients, {args.rate:g} msg/s "
        f"each for {args.seconds:g} s (offered {offered:,.0f} deliveries/s); database {db_kind}"
    )
    print(f"{'':28}{'bare websockets':>18}{'telemed live':>16}{'ratio':>10}")
    bare, real = results["bare"], results["telemed"]
    rows = [
        ("messages sent", "sent", "{:,.0f}"),
        ("delivered to others", "delivered", "{:,.0f}"),
        ("delivered msg/s", "rate", "{:,.0f}"),
        ("latency p50 (ms)", "p50", "{:,.1f}"),
        ("latency p99 (ms)", "p99", "{:,.1f}"),
        ("KiB per idle connection", "idle_kib", "{:,.1f}"),
    ]
    for label, key, fmt in rows:
        ratio = real[key] / bare[key] if bare[key] else float("nan")
        print(f"{label:28}{fmt.format(bare[key]):>18}{fmt.format(real[key]):>16}{ratio:>10.2f}")
    print(f"(idle connections measured: {bare['idle_count']} and {real['idle_count']})")


if __name__ == "__main__":
    main()
