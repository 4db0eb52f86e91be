"""The link emulator itself: bytes cross intact, and delay, rate, loss and outages cost
what they say, measured against a real echo server on loopback."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from tests.linkshaper import Link, LinkShaper, Outages


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def round_trip(port: int, data: bytes, timeout: float = 30) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sender = threading.Thread(target=sock.sendall, args=(data,))
        sender.start()
        got = bytearray()
        while len(got) < len(data):
            piece = sock.recv(65536)
            if not piece:
                break
            got += piece
        sender.join()
    return bytes(got), time.monotonic() - started


def test_a_clean_link_carries_bytes_intact_both_ways(echo):
    data = bytes(range(256)) * 4096  # 1 MiB
    with LinkShaper(echo) as link:
        got, _ = round_trip(link.port, data)
    assert got == data
    assert link.counters.up_bytes == link.counters.down_bytes == len(data)


def test_delay_is_paid_each_way(echo):
    with LinkShaper(echo, Link(delay=0.1)) as link:
        got, took = round_trip(link.port, b"ping")
    assert got == b"ping"
    assert 0.2 <= took < 1.0


def test_rate_limits_each_direction(echo):
    data = b"x" * 100_000
    with LinkShaper(echo, Link(rate=200_000)) as link:
        got, took = round_trip(link.port, data)
    assert got == data
    # Up and down overlap on a full-duplex line: about 0.5 s, not 1 s, not nothing.
    assert 0.45 <= took < 1.5


def test_loss_stalls_the_connection_but_loses_nothing(echo):
    data = bytes(range(256)) * 400  # about 70 segments each way
    with LinkShaper(echo, Link(delay=0.01, loss=0.1, seed=7)) as link:
        got, took = round_trip(link.port, data)
    assert got == data
    assert link.counters.stalls > 0
    assert took >= 0.2  # at least one retransmission's wait


def test_a_silence_holds_bytes_and_keeps_the_connection(echo):
    outages = Outages(every=10, length=0.6, mode="silence", first=0.3)
    with (
        LinkShaper(echo, Link(outages=outages)) as link,
        socket.create_connection(("127.0.0.1", link.port), timeout=10) as sock,
    ):
        sock.sendall(b"before")
        assert sock.recv(100) == b"before"
        time.sleep(max(0, 0.4 - link.elapsed()))
        sent = time.monotonic()
        sock.sendall(b"during")
        assert sock.recv(100) == b"during"
        waited = time.monotonic() - sent
    assert link.elapsed() > 0.9
    assert 0.3 <= waited < 1.5  # held until the link came back at 0.9 s
    assert link.counters.resets == 0


def test_a_reset_cuts_open_connections_and_refuses_new_ones(echo):
    with LinkShaper(echo) as link:
        sock = socket.create_connection(("127.0.0.1", link.port), timeout=5)
        sock.sendall(b"hello")
        assert sock.recv(100) == b"hello"
        link.reset_all(for_seconds=0.5)
        with pytest.raises(ConnectionResetError):
            for _ in range(50):
                sock.sendall(b"more")
                if not sock.recv(100):
                    raise ConnectionResetError  # a FIN would be a bug, but fail loudly
                time.sleep(0.02)
        sock.close()
        with (
            pytest.raises(OSError),
            socket.create_connection(("127.0.0.1", link.port), timeout=5) as refused,
        ):
            time.sleep(0.05)
            refused.sendall(b"x")
            if not refused.recv(10):
                raise ConnectionResetError
        time.sleep(0.6)
        got, _ = round_trip(link.port, b"back")
    assert got == b"back"
    assert link.counters.resets >= 2


def test_scheduled_resets_cut_every_period(echo):
    outages = Outages(every=0.5, length=0.2, mode="reset", first=0.2)
    with LinkShaper(echo, Link(outages=outages)) as link:
        sock = socket.create_connection(("127.0.0.1", link.port), timeout=5)
        sock.sendall(b"a")
        assert sock.recv(10) == b"a"
        time.sleep(0.45 - link.elapsed())
        with pytest.raises(OSError):
            sock.sendall(b"b")
            if not sock.recv(10):
                raise ConnectionResetError
        sock.close()
        time.sleep(max(0, 0.55 - link.elapsed()))
        got, _ = round_trip(link.port, b"c")
    assert got == b"c"


def test_an_outage_must_fit_its_period():
    with pytest.raises(ValueError):
        Outages(every=5, length=5)
    with pytest.raises(ValueError):
        Outages(every=30, length=5, mode="cable")
    assert Outages(every=30, length=5).down_until(26) == 30
    assert Outages(every=30, length=5).down_until(31) is None
    assert Outages(every=30, length=5).down_until(57) == 60
