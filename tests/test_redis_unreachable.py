"""Redis unreachable when the service starts: it runs in-process and says so in one clear
log line, or, with TELEMED_REDIS_REQUIRED=1, refuses to start and says why; a Redis lost
later costs one warning, not a traceback per message."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from telemed import fanout
from tests.live_support import free_port

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def fresh_fanout():
    fanout.set_fanout(None)
    yield
    fanout.set_fanout(None)


def test_unreachable_redis_falls_back_in_process_with_one_line(caplog):
    config = {"TELEMED_REDIS_URL": NOWHERE}
    with caplog.at_level(logging.WARNING, logger="telemed.fanout"):
        assert fanout.settle_at_start(config) == "in-process"
    assert config["TELEMED_REDIS_URL"] is None
    assert isinstance(fanout.get_fanout(), fanout.InProcessFanout)
    [line] = [r.getMessage() for r in caplog.records]
    assert "127.0.0.1:1" in line and "running in-process" in line
    assert "s3cret" not in line


def test_required_redis_refuses_with_the_reason():
    with pytest.raises(RuntimeError, match=r"unreachable \(.+\) and TELEMED_REDIS_REQUIRED=1"):
        fanout.settle_at_start({"TELEMED_REDIS_URL": NOWHERE, "TELEMED_REDIS_REQUIRED": True})


def test_a_lost_redis_is_one_warning_not_a_traceback_per_publish(caplog):
    lost = fanout.RedisFanout(NOWHERE)
    with caplog.at_level(logging.WARNING, logger="telemed.fanout"):
        for n in range(5):
            lost.publish("user:1", {"type": "notification", "n": n})
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is None
    lost.close()


def serve(tmp_path: Path, **env: str) -> subprocess.Popen:
    environment = {
        **os.environ,
        "TELEMED_INSTANCE_DIR": str(tmp_path),
        "TELEMED_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "TELEMED_PORT": str(env.pop("port")),
        "TELEMED_LIVE_PORT": str(free_port()),
        "TELEMED_RUN_SCHEDULER": "0",
        "TELEMED_REDIS_URL": NOWHERE,
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_starts_in_process_when_redis_is_down(tmp_path):
    port = free_port()
    process = serve(tmp_path, port=port)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            raise AssertionError("the server did not answer")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "running in-process" in output
    assert "live consult sockets on" in output
    assert "Traceback" not in output


def test_serve_refuses_when_redis_is_required(tmp_path):
    process = serve(tmp_path, port=free_port(), TELEMED_REDIS_REQUIRED="1")
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "TELEMED_REDIS_REQUIRED=1" in output and "unreachable" in output
    assert "Traceback" not in output


def test_a_live_process_refuses_when_redis_is_required(tmp_path):
    environment = {
        **os.environ,
        "TELEMED_INSTANCE_DIR": str(tmp_path),
        "TELEMED_DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}",
        "TELEMED_LIVE_PORT": str(free_port()),
        "TELEMED_REDIS_URL": NOWHERE,
        "TELEMED_REDIS_REQUIRED": "1",
    }
    process = subprocess.run(
        [sys.executable, "-m", "telemed.live"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0
    assert "TELEMED_REDIS_REQUIRED=1" in process.stderr and "Traceback" not in process.stderr
