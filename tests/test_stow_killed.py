"""A STOW-RS request whose server is killed (SIGKILL) mid-request leaves the store
consistent once the clean-up job has run: no stored object without its row, no row
without its object, nothing left in ``tmp``; and whatever the request had written by
then was readable by the service only.

The real server (``flask serve``) runs as a process of its own and is killed at several
moments of the same kind of request: while the body is still arriving, while the spooled
body is being checked, while the checked instances are being stored, and during a
smaller request held in memory. The moment is chosen by watching the store, not a clock.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from telemed.extensions import db
from telemed.models.case_files import DicomInstance
from telemed.web.dicomweb import BODY_IN_MEMORY
from tests import dicom_files, factories
from tests.jobs.processes import (
    Process,
    SharedClock,
    flask_command,
    free_port,
    fresh,
    process_env,
    wait_until,
)
from tests.test_dicom_service import open_imaging_case

BOUNDARY = "k1lledb0undary"
CT_BYTES = len(dicom_files.sample("CT_small.dcm").read_bytes())
# Enough slices for a body the server spools to a file rather than holding in memory.
SPOOLED_COUNT = BODY_IN_MEMORY // CT_BYTES + 40


def multipart(paths: list[Path]) -> bytes:
    body = bytearray()
    for path in paths:
        body += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += path.read_bytes() + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    return bytes(body)


def request_head(case_id: int, token: str, length: int) -> bytes:
    return (
        f"POST /cases/{case_id}/dicomweb/studies HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n"
        f'Content-Type: multipart/related; type="application/dicom"; boundary={BOUNDARY}\r\n'
        "Accept: application/dicom+json\r\n"
        f"Content-Length: {length}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


class Sender(threading.Thread):
    """Sends a request on a raw socket (all of it, or only its first ``part`` bytes) and
    reads whatever answer comes before the server dies."""

    def __init__(self, port: int, head: bytes, body: bytes, part: int | None = None) -> None:
        super().__init__(daemon=True)
        self.port, self.head, self.body, self.part = port, head, body, part
        self.answer = b""
        self.sent_part = threading.Event()

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=120) as sock:
                sock.sendall(self.head)
                sock.sendall(self.body[: self.part] if self.part is not None else self.body)
                self.sent_part.set()
                while chunk := sock.recv(65536):
                    self.answer += chunk
        except OSError:
            pass  # the server was killed under us
        finally:
            self.sent_part.set()


def files_under(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return [Path(root) / name for root, _dirs, names in os.walk(folder) for name in names]


def objects_in(storage: Path) -> list[Path]:
    return [p for p in files_under(storage / "objects") if len(p.name) == 64]


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


class Server:
    """``flask serve`` on the test's database, started again after each kill."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.instance = tmp_path / "server"
        self.storage = self.instance / "storage"
        clock = SharedClock(tmp_path / "clock-offset")
        self.env = process_env(
            database_url,
            clock.path,
            self.instance,
            TELEMED_RUN_SCHEDULER="0",
            TELEMED_DICOM_WORKERS="1",
        )
        self.port = free_port()
        self.process: Process | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.process = Process(
            f"web-{self.starts}",
            flask_command("serve", "--threads", "4"),
            {**self.env, "TELEMED_PORT": str(self.port), "TELEMED_LIVE_PORT": str(free_port())},
            self.tmp_path,
        )
        wait_until(lambda: answers(self.port), "the web process", processes=[self.process])

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def run_clean_up(self) -> str:
        """The hourly clean-up job, run by the operator's command, with no grace: nothing
        else is at work on the store now."""
        process = Process(
            f"clean-up-{self.starts}",
            flask_command("jobs", "run", "clean_up"),
            {**self.env, "TELEMED_TMP_GRACE_HOURS": "0", "TELEMED_ORPHAN_GRACE_HOURS": "0"},
            self.tmp_path,
        )
        assert process.handle.wait(timeout=120) == 0, process.output()
        process.stop()
        return process.output()


@pytest.fixture
def server(database_url, tmp_path):
    running = Server(database_url, tmp_path)
    yield running
    running.stop()


def watch_until(condition, sender: Sender, what: str) -> None:
    """Poll the store as fast as it answers until ``condition`` holds (the request must
    still be at work: an answer first means the moment was missed)."""
    deadline = time.monotonic() + 120
    while not condition():
        assert not sender.answer, f"the request was answered before {what}: {sender.answer[:300]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def private_modes(storage: Path) -> list[str]:
    """Files in tmp and objects not 0600, folders in tmp not 0700."""
    wrong = []
    for path in files_under(storage / "tmp") + objects_in(storage):
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            continue
        if mode != 0o600:
            wrong.append(f"{path.relative_to(storage)} {oct(mode)}")
    for root, dirs, _names in os.walk(storage / "tmp"):
        for name in dirs:
            mode = stat.S_IMODE((Path(root) / name).lstat().st_mode)
            if mode != 0o700:
                wrong.append(f"{(Path(root) / name).relative_to(storage)} {oct(mode)}")
    return wrong


def rows() -> set[str]:
    return set(fresh(lambda: db.session.execute(select(DicomInstance.sha256)).scalars().all()))


def test_a_stow_killed_at_any_moment_leaves_nothing_the_clean_up_does_not_settle(
    app, world, server, tmp_path
):
    case = open_imaging_case(world)
    db.session.commit()
    case_id = case.id
    token = factories.token_for(world.user("gp_ts1"))
    storage = server.storage
    leftovers: dict[str, dict[str, int]] = {}

    def killed_round(name: str, count: int, moment, part: int | None = None) -> None:
        body = multipart(dicom_files.ct_series(tmp_path / name, count))
        server.start()
        before = set(objects_in(storage))
        sender = Sender(server.port, request_head(case_id, token, len(body)), body, part)
        sender.start()
        watch_until(lambda: moment(sender, before), sender, name)
        server.kill()
        sender.join(timeout=30)
        wrong = private_modes(storage)
        assert not wrong, f"{name}: files not private to the service: {wrong}"
        named = rows()
        leftovers[name] = {
            "tmp": len(files_under(storage / "tmp")),
            "orphans": sum(1 for p in objects_in(storage) if p.name not in named),
        }

    def body_half_sent(sender, _before) -> bool:
        return sender.sent_part.is_set()

    def body_spooled(_sender, _before) -> bool:
        return any(p.name == "body" for p in files_under(storage / "tmp"))

    def storing_begun(_sender, before) -> bool:
        return len(set(objects_in(storage)) - before) >= 20

    def first_object(_sender, before) -> bool:
        return bool(set(objects_in(storage)) - before)

    # While the body is still arriving (the server holds what came so far).
    killed_round("arriving", SPOOLED_COUNT, body_half_sent, part=(SPOOLED_COUNT * CT_BYTES) // 2)
    # The whole body came and was spooled to the store; its parts are being checked.
    killed_round("spooled", SPOOLED_COUNT, body_spooled)
    # Checked instances are being stored, their rows not yet written.
    killed_round("storing", SPOOLED_COUNT, storing_begun)
    # A body small enough to be held in memory, killed as its first instance is stored.
    killed_round("in memory", 120, first_object)

    assert leftovers["spooled"]["tmp"] > 0, leftovers
    assert leftovers["storing"]["orphans"] > 0, leftovers
    assert leftovers["in memory"]["orphans"] > 0, leftovers

    # Started again, the server stores a whole request as if nothing had happened.
    server.start()
    paths = dicom_files.ct_series(tmp_path / "after", 30)
    body = multipart(paths)
    sender = Sender(server.port, request_head(case_id, token, len(body)), body)
    sender.start()
    sender.join(timeout=120)
    assert sender.answer.startswith(b"HTTP/1.1 200"), sender.answer[:500]
    server.stop()

    output = server.run_clean_up()
    assert "clean_up: ok" in output, output
    named = rows()
    stored = {p.name for p in objects_in(storage)}
    assert len(named) == 30
    assert stored == named, (
        f"objects without a row: {len(stored - named)}; rows without an object: "
        f"{len(named - stored)}"
    )
    assert files_under(storage / "tmp") == [], files_under(storage / "tmp")
    assert [p for p in (storage / "tmp").iterdir()] == []
