"""How the listener is run: ``flask dicom serve`` on its own, and beside the web app in
``flask serve`` (its companions), each on the configured address."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from telemed.extensions import db
from telemed.runner import _start_companions
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom_nodes
from tests.dicomnode.support import dcmtk, free_port, listener

ROOT = Path(__file__).resolve().parents[2]


def echo(port: int, calling: str = "TS1_PACS") -> subprocess.CompletedProcess[str]:
    return dcmtk("echoscu", "-aet", calling, "-aec", "TELEMED", "127.0.0.1", str(port))


def known_member(world) -> None:
    dicom_nodes.set_node(actor_of(world.user("admin")), world.members[0].id, ae_title="TS1_PACS")
    db.session.commit()


def test_flask_dicom_serve_listens_until_sigterm(app, world, database_url, tmp_path):
    known_member(world)
    port = free_port()
    env = {
        **os.environ,
        "TELEMED_DATABASE_URL": database_url,
        "TELEMED_STORAGE_DIR": str(tmp_path / "storage"),
        "TELEMED_DICOM_PORT": str(port),
    }
    env.pop("TELEMED_DICOM_HOST", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "dicom", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = server.stdout.readline()
        assert f"DICOM node TELEMED on 127.0.0.1:{port}" in started, started
        deadline = time.monotonic() + 20
        while (answer := echo(port)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer.returncode == 0, answer.stderr
        assert echo(port, calling="STRANGER").returncode != 0
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=20)
    assert server.returncode == 0 and "DICOM node stopped" in out


def test_flask_serve_starts_the_listener_beside_the_web_app(app, world):
    known_member(world)
    app.config["TELEMED_DICOM_PORT"] = port = free_port()
    stoppers = _start_companions(app, live=False, scheduler=False, dicom=True)
    try:
        assert len(stoppers) == 1
        assert echo(port).returncode == 0
    finally:
        for stop in stoppers:
            stop()
    app.config["TELEMED_RUN_DICOM"] = False
    assert _start_companions(app, live=False, scheduler=False, dicom=True) == []


def test_a_taken_port_is_a_clear_refusal_to_start(app, world):
    import click
    import pytest

    taken = listener(app)
    try:
        app.config["TELEMED_DICOM_PORT"] = taken.port
        app.config["TELEMED_RUN_DICOM"] = True
        with pytest.raises(click.ClickException) as refused:
            _start_companions(app, live=False, scheduler=False, dicom=True)
        assert f"cannot listen on 127.0.0.1:{taken.port}" in refused.value.message
        assert "TELEMED_DICOM_PORT" in refused.value.message
    finally:
        taken.stop()
