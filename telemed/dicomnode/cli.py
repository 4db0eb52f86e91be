"""``flask --app wsgi dicom serve``: the DICOM node's listener alone (``flask serve``
runs it beside the web app unless TELEMED_RUN_DICOM=0)."""

from __future__ import annotations

import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from telemed.dicomnode.scp import DicomListener, ListenerUnavailable

dicom_cli = AppGroup("dicom", help="The DICOM node for member institutions.")


@dicom_cli.command("serve")
@click.option("--host", default=None, help="Address to listen on (TELEMED_DICOM_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (TELEMED_DICOM_PORT).")
def dicom_serve(host: str | None, port: int | None) -> None:
    """C-ECHO and C-STORE for member institutions' AE titles, until SIGTERM or Ctrl-C."""
    try:
        listener = DicomListener(current_app._get_current_object(), host=host, port=port)
    except ListenerUnavailable as error:
        raise click.ClickException(str(error)) from None
    listener.start()
    click.echo(f"DICOM node {listener.ae_title} on {listener.host}:{listener.port}")
    done = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _signum, _frame: done.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        done.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listener.stop()
        click.echo("DICOM node stopped")
