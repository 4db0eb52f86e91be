"""``flask --app wsgi serve``: the whole service in one process for a single machine.

The web app is served by waitress; the live-consult socket server and the scheduler run
beside it in the same process (in-process defaults). In production each runs as its own
processes instead (docs/deployment.md).
"""

from __future__ import annotations

import gc
import logging
import signal
from collections.abc import Callable

import click
from flask import Flask, current_app
from waitress import wasyncore

from telemed.fanout import settle_at_start
from telemed.http_server import create_server

log = logging.getLogger(__name__)

Stopper = Callable[[], None]


def _start_companions(
    app: Flask, *, live: bool, scheduler: bool, dicom: bool = False
) -> list[Stopper]:
    """Start what runs beside the web server; each returns how to stop it."""
    stoppers: list[Stopper] = []
    if live:
        stoppers.append(_start_live(app))
    if dicom and app.config["TELEMED_RUN_DICOM"]:
        stoppers.append(_start_dicom(app))
    if scheduler:
        from telemed.jobs.service import start_for

        service = start_for(app)  # None when TELEMED_RUN_SCHEDULER opts this process out
        if service is not None:
            stoppers.append(service.stop)
    return stoppers


def _start_live(app: Flask) -> Stopper:
    """The live-consult server on its own thread and event loop."""
    from telemed.live.server import LiveThread

    thread = LiveThread(app).start()
    click.echo(f"live consult sockets on ws://{app.config['TELEMED_LIVE_HOST']}:{thread.port}/live")
    return thread.stop


def _start_dicom(app: Flask) -> Stopper:
    """The DICOM node's listener (C-ECHO, C-STORE) on its own threads."""
    from telemed.dicomnode.scp import DicomListener, ListenerUnavailable

    try:
        listener = DicomListener(app).start()
    except ListenerUnavailable as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"DICOM node {listener.ae_title} on {listener.host}:{listener.port}")
    return listener.stop


RECV_BYTES = 256 * 1024
# A request body up to this size is held in memory; a larger one is spooled by waitress to
# a temporary file (its default, 512 KB, sent every 512×512 16-bit CT slice, 0.5 MB and a
# header, through a file on disk before the app read it back). Bounded per connection.
INBUF_OVERFLOW = 1024 * 1024


def web_server(app: Flask, *, host: str, port: int, threads: int = 16):
    """The web app's HTTP server as ``flask serve`` runs it (the bench uses the same)."""
    return create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        connection_limit=1000,
        ident="telemed",
        # Read uploads in 256 KB pieces rather than waitress's 8 KB: a 500 KB DICOM file is
        # two reads instead of sixty-four (memory per read is transient).
        recv_bytes=RECV_BYTES,
        inbuf_overflow=INBUF_OVERFLOW,
    )


def freeze_startup_objects() -> None:
    """Put what start-up loaded (modules, the app, its mappers) out of the collector's way:
    a request that builds thousands of short-lived objects (a batch of DICOM headers) then
    triggers full collections that walk only what requests made, not the whole app."""
    gc.collect()
    gc.freeze()


def serve(
    app: Flask,
    *,
    live: bool = True,
    scheduler: bool = True,
    dicom: bool = True,
    threads: int = 16,
) -> None:
    host = app.config["TELEMED_HOST"]
    port = app.config["TELEMED_PORT"]
    try:
        settle_at_start(app.config)
    except RuntimeError as refusal:
        raise click.ClickException(str(refusal)) from None
    stoppers = _start_companions(app, live=live, scheduler=scheduler, dicom=dicom)
    server = web_server(app, host=host, port=port, threads=threads)

    def _stop(_signum, _frame) -> None:
        # Close every socket from inside waitress's loop; the loop then returns.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    click.echo(f"telemed is serving on http://{host}:{port}/  (Ctrl-C stops it)")
    freeze_startup_objects()
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.task_dispatcher.shutdown()
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception:
                log.exception("error while stopping")
        click.echo("telemed stopped")


@click.command("serve")
@click.option("--no-live", is_flag=True, help="Do not start the live-consult socket server.")
@click.option("--no-scheduler", is_flag=True, help="Do not start the job scheduler.")
@click.option("--no-dicom", is_flag=True, help="Do not start the DICOM node's listener.")
@click.option("--threads", default=16, show_default=True, help="Web worker threads.")
def serve_command(no_live: bool, no_scheduler: bool, no_dicom: bool, threads: int) -> None:
    """Serve HTTP (and the live socket, scheduler and DICOM node) on TELEMED_HOST:TELEMED_PORT."""
    serve(
        current_app._get_current_object(),
        live=not no_live,
        scheduler=not no_scheduler,
        dicom=not no_dicom,
        threads=threads,
    )
