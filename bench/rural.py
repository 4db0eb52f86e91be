"""A township's link, measured: tus uploads and a consult's chat through the test suite's
link emulator (tests/linkshaper.py), side by side with a clean link.

    .venv/bin/python bench/rural.py [--instances 66] [--instance-kib 333] [--chat-seconds 30]
                                    [--outage-every 30] [--only uploads|chat|pages]
                                    [--repeat 3]

Everything runs on loopback in this process: the web app under the server ``flask
serve`` uses (waitress through telemed/http_server.py), the live server, and one shaping
proxy per measurement in front of them. Profiles, each direction separately: clean;
2 Mbit/s and 150 ms one way without loss;
2 Mbit/s, 150 ms one way, 2% loss (lost segments played as stalls); the same with the
link silent for 5 s every ``outage-every`` seconds; the same with 5 s of resets instead.

Uploads: a CT study of ``instances`` files of ``instance-kib`` each, sent the way the
case page sends it (static/js/_upload_pace.js): three files in flight, each on its kept
connection, chunks doubling from 512 KiB to 4 MiB while they arrive and falling to a
quarter after a cut, resumed from the server's offset (HEAD). Printed: time, share of
the link's rate carried as file bytes, bytes sent twice, instances stored.

Chat: the requesting doctor and the specialist each send a chat line a second; latency
is from one side's send to the other side's event. Each socket pings after 2 s without
hearing anything (at most every 2 s) and is dropped when silent for 4.5 s, then reopened
with a new ticket (tickets come from the web app over loopback, unshaped), as the room
page does (static/js/_live.js). Printed: p50 /
p95 / max latency, delivered / sent, duplicates, and the longest time from a link's
return to the room being live again; and how many lines took over 1.5 RTT beside how
many of the link's segments were lost (each lost segment stalls its connection for an
RTT, 300 ms: a line behind one arrives in about 600 ms).

Pages (``--only pages``, not part of the default run): Chromium through the link, with
and without loss, with and without the pages' ``modulepreload`` links; the median of
``repeat`` runs of DOMContentLoaded per grassroots page, cold (cache emptied) and warm
(the same page again), and the time from asking for /slots signed out, through the
sign-in form, to the slot list.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATE = 2_000_000 / 8
DEADLINE_S = 900  # no run goes on longer than this
LISTEN_AFTER_S = 8.0


def study(folder: Path, count: int, kib: int) -> list[Path]:
    """``count`` CT instances of about ``kib`` KiB each: tests/dicom_files.ct_series with
    its 128x128 slices tiled to the size asked for (the issue's study: 66 of 333 KiB)."""
    import numpy as np
    import pydicom

    from tests import dicom_files

    paths = dicom_files.ct_series(folder, count)
    side = max(128, int((kib * 1024 / 2) ** 0.5) // 128 * 128)
    for path in paths:
        ds = pydicom.dcmread(path)
        reps = side // 128
        pixels = np.tile(ds.pixel_array, (reps, reps)).astype(np.int16)
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = pixels.tobytes()
        ds.save_as(path, enforce_file_format=True)
    return paths


def profiles(every: float):
    from dataclasses import replace

    from tests.linkshaper import CLEAN, RURAL, Outages

    return [
        ("clean", CLEAN),
        # The same link without loss: what is left of the chat's tail is not the loss.
        ("2 Mbit/s, 300 ms RTT, no loss", replace(RURAL, loss=0.0)),
        ("2 Mbit/s, 300 ms RTT, 2% loss", RURAL),
        (f"+ 5 s silence every {every:g} s", RURAL.with_outages(Outages(every, 5, "silence"))),
        (f"+ 5 s of resets every {every:g} s", RURAL.with_outages(Outages(every, 5, "reset"))),
    ]


# -- set-up --------------------------------------------------------------------------------


def prepare(instance: Path):
    os.environ["TELEMED_INSTANCE_DIR"] = str(instance)
    os.environ.setdefault("TELEMED_SECRET_KEY", "bench-" + os.urandom(8).hex())
    os.environ["TELEMED_DATABASE_URL"] = f"sqlite:///{instance / 'bench.sqlite'}"
    os.environ["TELEMED_STORAGE_DIR"] = str(instance / "storage")
    from flask_migrate import upgrade

    from telemed import create_app
    from telemed.extensions import db
    from tests import factories

    app = create_app()
    app.app_context().push()
    upgrade()
    world = factories.build_world()
    db.session.commit()
    return app, world


def draft_case(world) -> int:
    from telemed.db import write_intent
    from telemed.extensions import db
    from tests.test_dicom_service import open_imaging_case

    db.session.commit()
    with write_intent(True):
        case_id = open_imaging_case(world).id
        db.session.commit()
    return case_id


def consult_case(world) -> int:
    from telemed.db import write_intent
    from telemed.extensions import db
    from tests import live_support as ls

    db.session.commit()
    with write_intent(True):
        case_id = ls.scheduled_consult(world).id
        db.session.commit()
    return case_id


def stored(case_id: int) -> int:
    from sqlalchemy import func, select

    from telemed.extensions import db
    from telemed.models.case_files import DicomInstance

    db.session.commit()
    query = select(func.count()).where(DicomInstance.case_id == case_id)
    return db.session.execute(query).scalar_one()


# -- uploads -------------------------------------------------------------------------------


class Pace:
    """The page's chunk policy (static/js/_upload_pace.js), shared by the files in flight."""

    def __init__(self) -> None:
        self.chunk = 512 * 1024
        self.lock = threading.Lock()

    def grew(self) -> None:
        with self.lock:
            self.chunk = min(4 * 1024 * 1024, self.chunk * 2)

    def cut(self) -> None:
        with self.lock:
            self.chunk = max(128 * 1024, self.chunk // 4)


def upload_study(base: str, token: str, case_id: int, files: list[Path]) -> dict:
    import base64

    import requests

    tus = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}"}
    pace = Pace()
    todo: queue.Queue[Path] = queue.Queue()
    for path in files:
        todo.put(path)
    sent = [0]
    failures: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    count_lock = threading.Lock()

    def one(session, path: Path) -> None:
        data = path.read_bytes()
        meta = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in {"filename": path.name, "case_id": str(case_id)}.items()
        )
        location = None
        offset = 0
        retry = 0
        while time.monotonic() < deadline:
            try:
                if location is None:
                    answer = session.post(
                        f"{base}/uploads",
                        headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
                        timeout=20,
                    )
                    answer.raise_for_status()
                    location = base + answer.headers["Location"]
                elif retry:
                    answer = session.head(location, headers=tus, timeout=20)
                    answer.raise_for_status()
                    offset = int(answer.headers["Upload-Offset"])
                if offset >= len(data):
                    return
                body = data[offset : offset + pace.chunk]
                with count_lock:
                    sent[0] += len(body)
                answer = session.patch(
                    location,
                    data=body,
                    headers={
                        **tus,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=(20, 60),
                )
                if answer.status_code >= 400:
                    failures.append(f"{path.name}: {answer.status_code} {answer.text[:200]}")
                    return
                offset = int(answer.headers["Upload-Offset"])
                pace.grew()
                retry = 0
                if offset >= len(data):
                    return
            except (requests.ConnectionError, requests.Timeout):
                pace.cut()
                session.close()
                time.sleep([0.25, 0.5, 1.0][min(retry, 2)])
                retry += 1
        failures.append(f"{path.name}: gave up")

    def worker() -> None:
        with requests.Session() as session:
            while True:
                try:
                    path = todo.get_nowait()
                except queue.Empty:
                    return
                one(session, path)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    total = sum(p.stat().st_size for p in files)
    return {
        "seconds": took,
        "bytes": total,
        "resent": max(0, sent[0] - total),
        "failures": failures,
    }


# -- chat ----------------------------------------------------------------------------------


async def chat(
    web: str, live_url: str, room_case: int, tokens: dict[str, str], seconds: float, outages
) -> dict:
    import requests
    from websockets.asyncio.client import connect

    origin = web
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    seen: dict[str, int] = {}
    back_online: list[float] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stop_at = t0 + seconds

    def ticket(token: str) -> str:
        answer = requests.post(
            f"{web}/consults/{room_case}/ticket",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        answer.raise_for_status()
        grant = answer.json()
        return grant["ticket"], grant["url"].rsplit("/live", 1)[1]

    async def side(name: str, token: str) -> None:
        last_seq = 0
        pending: dict[str, str] = {}
        counter = 0
        # Each side listens a while after the last line, so the other's last lines count.
        while loop.time() < stop_at + LISTEN_AFTER_S:
            try:
                grant, path = await asyncio.to_thread(ticket, token)
                async with asyncio.timeout(5):
                    ws = await connect(f"{live_url}{path}", origin=origin, open_timeout=5)
                    await ws.send(
                        json.dumps({"type": "hello", "v": 1, "ticket": grant, "last_seq": last_seq})
                    )
                    while True:
                        frame = json.loads(await ws.recv())
                        if frame.get("type") == "event" and frame["seq"] > last_seq:
                            last_seq = frame["seq"]
                            on_event(name, frame)
                        if frame.get("type") == "replayed":
                            last_seq = max(last_seq, frame["last_seq"])  # as the page does
                            break
                if outages is not None:
                    elapsed = loop.time() - t0
                    first = (
                        outages.every - outages.length if outages.first is None else outages.first
                    )
                    since = (elapsed - first) % outages.every
                    if 0 < since - outages.length < outages.every / 2:
                        back_online.append(since - outages.length)
                for client_id, text in list(pending.items()):  # resend what was not acked
                    await ws.send(
                        json.dumps(
                            {
                                "type": "send",
                                "id": client_id,
                                "kind": "chat",
                                "body": {"text": text},
                            }
                        )
                    )
                heard = loop.time()
                next_send = loop.time()
                next_ping = loop.time() + 2
                while loop.time() < stop_at + LISTEN_AFTER_S:
                    now = loop.time()
                    if now - heard > 4.5:
                        raise TimeoutError("silent")
                    if now >= next_send and now < stop_at:
                        counter += 1
                        client_id = f"{name}-{counter}"
                        text = f"{name} {counter}"
                        pending[client_id] = text
                        sent_at[client_id] = time.monotonic()
                        await ws.send(
                            json.dumps(
                                {
                                    "type": "send",
                                    "id": client_id,
                                    "kind": "chat",
                                    "body": {"text": text},
                                }
                            )
                        )
                        next_send += 1.0
                    if now >= next_ping and now - heard >= 2:  # only a quiet link
                        await ws.send(json.dumps({"type": "ping", "t": 0}))
                        next_ping = now + 2
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=0.1)
                    except TimeoutError:
                        continue
                    heard = loop.time()
                    frame = json.loads(raw)
                    if frame.get("type") == "ack":
                        pending.pop(frame.get("id"), None)
                    elif frame.get("type") == "event" and frame["seq"] > last_seq:
                        last_seq = frame["seq"]
                        pending.pop(frame.get("id"), None)
                        on_event(name, frame)
                with contextlib.suppress(Exception):
                    await ws.close()
                return
            except Exception:
                await asyncio.sleep(0.25)

    def on_event(name: str, frame: dict) -> None:
        client_id = frame.get("id") or ""
        if frame.get("kind") != "chat" or client_id.startswith(name):
            return
        seen[client_id] = seen.get(client_id, 0) + 1
        if seen[client_id] == 1 and client_id in sent_at:
            latencies.append((time.monotonic() - sent_at[client_id]) * 1000)

    await asyncio.gather(side("doctor", tokens["doctor"]), side("specialist", tokens["specialist"]))
    return {
        "sent": len(sent_at),
        "delivered": sum(1 for v in seen.values() if v >= 1),
        "doubled": sum(1 for v in seen.values() if v > 1),
        "latencies": latencies,
        "back_online": max(back_online) if back_online else None,
    }


# -- pages ---------------------------------------------------------------------------------


def page_times(base: str, paths: dict[str, str], *, preload: bool) -> dict[str, object]:
    """DOMContentLoaded of each grassroots page in Chromium through the shaped link, cold
    (the browser's cache emptied first; the login kept) and warm (the same page again),
    and sign-in to the slot list: from asking for /slots signed out (sent to the sign-in
    form) to the slot list shown. ``preload``: whether pages carry their modulepreloads."""
    from tests import browsing, factories

    dcl = "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
    out: dict[str, object] = {}
    with browsing.launched() as browser:
        context = browser.new_context(base_url=base)
        page = context.new_page()
        started = time.monotonic()
        page.goto("/slots")
        page.fill("#username", "gp_ts1")
        page.fill("#password", factories.PASSWORD)
        with page.expect_navigation():
            page.click("main button[type=submit]")
        page.wait_for_selector("#results-heading")
        out["sign-in → slot list"] = (time.monotonic() - started) * 1000
        assert "/slots" in page.url, page.url
        cdp = context.new_cdp_session(page)
        for name, path in paths.items():
            cdp.send("Network.clearBrowserCache")
            page.goto(path, wait_until="domcontentloaded")
            cold = page.evaluate(dcl)
            page.goto(path, wait_until="domcontentloaded")
            warm = page.evaluate(dcl)
            out[name] = (cold, warm)
        context.close()
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the table -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=66)
    parser.add_argument("--instance-kib", type=int, default=333)
    parser.add_argument("--chat-seconds", type=float, default=30)
    parser.add_argument("--outage-every", type=float, default=30)
    parser.add_argument("--only", choices=["uploads", "chat", "pages"], default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each page figure")
    args = parser.parse_args()

    from telemed.live.server import LiveSettings, LiveThread
    from tests import factories
    from tests import live_support as ls
    from tests.conftest import ServerThread
    from tests.linkshaper import LinkShaper

    instance = Path(tempfile.mkdtemp(prefix="bench-rural-"))
    app, world = prepare(instance)
    files = study(instance / "study", args.instances, args.instance_kib)
    total_mb = sum(p.stat().st_size for p in files) / 1e6
    token = factories.token_for(world.user("gp_ts1"))
    tokens = {"doctor": token, "specialist": factories.token_for(world.user("card1"))}
    from telemed.extensions import db

    db.session.commit()
    rows: dict[str, list[str]] = {
        "tus (the page's pacing)": [],
        "chat p50 / p95 / max": [],
        "chat delivered, doubled": [],
        "chat lines over 1.5 RTT; link segments lost": [],
        "room live after return": [],
    }
    names = []
    if args.only == "pages":
        pages(app, world, args.repeat)
        return
    with ServerThread(app) as web:
        settings = LiveSettings.from_app(app, port=0, allowed_origins=(web.url,), redis_url=None)
        with ls.readers_in_this_thread(), LiveThread(app, settings) as live:
            for name, link in profiles(args.outage_every):
                names.append(name)
                if args.only in (None, "uploads"):
                    case_id = draft_case(world)
                    db.session.commit()
                    with LinkShaper(web.port, link) as shaped:
                        result = upload_study(shaped.url, token, case_id, files)
                    share = result["bytes"] / (RATE * result["seconds"])
                    cell = f"{result['seconds']:.1f} s"
                    if link.rate:
                        cell += f" ({share:.0%} of the link)"
                    cell += f", {stored(case_id)}/{len(files)} stored"
                    if result["resent"]:
                        cell += f", {result['resent'] / 1e6:.2f} MB re-sent"
                    if result["failures"]:
                        cell += f", FAILED: {result['failures'][:2]}"
                    rows["tus (the page's pacing)"].append(cell)
                    print(name, "upload:", cell, flush=True)
                if args.only in (None, "chat"):
                    case_id = consult_case(world)
                    with LinkShaper(live.port, link) as shaped:
                        result = asyncio.run(
                            chat(
                                web.url,
                                f"ws://127.0.0.1:{shaped.port}/live",
                                case_id,
                                tokens,
                                args.chat_seconds,
                                link.outages,
                            )
                        )
                    lat = result["latencies"]
                    rows["chat p50 / p95 / max"].append(
                        f"{pct(lat, 0.5):,.0f} / {pct(lat, 0.95):,.0f} / {max(lat or [0]):,.0f} ms"
                    )
                    rows["chat delivered, doubled"].append(
                        f"{result['delivered']}/{result['sent']}, {result['doubled']}"
                    )
                    over = sum(1 for ms in lat if ms > 1.5 * link.rtt * 1000) if link.rtt else 0
                    stalls = shaped.counters
                    rows["chat lines over 1.5 RTT; link segments lost"].append(
                        f"{over}/{len(lat)} ({over / max(1, len(lat)):.1%}); "
                        f"{stalls.stalls}/{stalls.segments}"
                    )
                    back = result["back_online"]
                    rows["room live after return"].append("—" if back is None else f"{back:.1f} s")
                    print(name, "chat:", rows["chat p50 / p95 / max"][-1], flush=True)
    print()
    print(
        f"study: {len(files)} instances, {total_mb:.1f} MB; chat {args.chat_seconds:g} s, "
        "1 line/s per side"
    )
    print("| | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for label, cells in rows.items():
        if cells:
            print(f"| {label} | " + " | ".join(cells) + " |")


def pages(app, world, repeat: int) -> None:
    """DOMContentLoaded per grassroots page, cold and warm, and sign-in to the slot list,
    over the rural link without loss and with it, with and without the pages' preloads."""
    from dataclasses import replace
    from statistics import median

    from telemed.extensions import db
    from telemed.web import assets
    from tests.conftest import ServerThread
    from tests.linkshaper import RURAL, LinkShaper

    case_id, consult_id = draft_case(world), consult_case(world)
    db.session.commit()
    paths = {
        "home": "/",
        "slot search": "/slots",
        "my bookings": "/bookings",
        "case": f"/cases/{case_id}",
        "consult room": f"/consults/{consult_id}",
    }
    preloads = app.jinja_env.globals["asset_preloads"]
    runs: dict[tuple[str, bool], list[dict]] = {}
    links = (("no loss", replace(RURAL, loss=0.0)), ("2% loss", RURAL))
    with ServerThread(app) as web:
        page_times(web.url, paths, preload=True)  # the server's first requests, not counted
        for round_ in range(repeat):
            for link_name, link in links:
                # Alternating, so a busy moment of the machine falls on both alike.
                for preload in (False, True) if round_ % 2 == 0 else (True, False):
                    app.jinja_env.globals["asset_preloads"] = (
                        preloads if preload else (lambda *names: "")
                    )
                    with LinkShaper(web.port, replace(link, seed=round_ + 1)) as shaped:
                        figures = page_times(shaped.url, paths, preload=preload)
                    runs.setdefault((link_name, preload), []).append(figures)
                    print(link_name, preload, figures, flush=True)
    app.jinja_env.globals["asset_preloads"] = preloads
    rows: dict[str, list[str]] = {}
    heads = []
    for (link_name, preload), figures in runs.items():
        heads.append(f"{link_name}, {'preloads' if preload else 'no preloads'}")
        for name, first in figures[0].items():
            values = [f[name] for f in figures]
            if isinstance(first, float):
                cell = f"{median(values):,.0f} ms"
            else:
                cell = f"{median(v[0] for v in values):,.0f} / {median(v[1] for v in values):,.0f}"
            rows.setdefault(name, []).append(cell)
    assert assets  # the helper the pages call
    print()
    print(f"2 Mbit/s, 300 ms RTT; medians of {repeat} runs; DOMContentLoaded cold / warm ms")
    print("| | " + " | ".join(heads) + " |")
    print("|---" * (len(heads) + 1) + "|")
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
