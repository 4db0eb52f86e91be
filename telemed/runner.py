"""``flask --app wsgi serve``: the whole service in one process for a single machine.

The web app is served by waitress; the live-consult socket server and the scheduler run
beside it in the same process (in-process defaults). In production each runs as its own
processes instead (docs/deployment.md).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import click
from flask import Flask, current_app
from waitress import create_server

log = logging.getLogger(__name__)

Stopper = Callable[[], None]


def _start_companions(app: Flask, *, live: bool, scheduler: bool) -> list[Stopper]:
    """Start what runs beside the web server; each returns how to stop it."""
    stoppers: list[Stopper] = []
    if live:
        stoppers.append(_start_live(app))
    return stoppers


def _start_live(app: Flask) -> Stopper:
    """The live-consult server on its own thread and event loop."""
    from telemed.live.server import LiveThread

    thread = LiveThread(app).start()
    click.echo(f"live consult sockets on ws://{app.config['TELEMED_LIVE_HOST']}:{thread.port}/live")
    return thread.stop


def serve(app: Flask, *, live: bool = True, scheduler: bool = True, threads: int = 16) -> None:
    host = app.config["TELEMED_HOST"]
    port = app.config["TELEMED_PORT"]
    stoppers = _start_companions(app, live=live, scheduler=scheduler)
    server = create_server(app, host=host, port=port, threads=threads, ident="telemed")

    def _stop(_signum, _frame) -> None:
        # waitress's loop ends when its sockets close; Ctrl-C lands here too.
        threading.Thread(target=server.close, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, _stop)
    click.echo(f"telemed is serving on http://{host}:{port}/  (Ctrl-C stops it)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception:
                log.exception("error while stopping")
        server.close()
        click.echo("telemed stopped")


@click.command("serve")
@click.option("--no-live", is_flag=True, help="Do not start the live-consult socket server.")
@click.option("--no-scheduler", is_flag=True, help="Do not start the job scheduler.")
@click.option("--threads", default=16, show_default=True, help="Web worker threads.")
def serve_command(no_live: bool, no_scheduler: bool, threads: int) -> None:
    """Serve HTTP (and the live socket and scheduler) on TELEMED_HOST:TELEMED_PORT."""
    serve(
        current_app._get_current_object(),
        live=not no_live,
        scheduler=not no_scheduler,
        threads=threads,
    )
