"""Command-line entry points: ``flask --app wsgi <group> <command>``.

Each command is its own entry point and owns its transaction: it commits once at the end.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from telemed.extensions import db
from telemed.models.consortium import User
from telemed.services.accounts import accounts
from telemed.services.accounts.context import Origin, set_origin

token_cli = AppGroup("token", help="API tokens for integrations.")
users_cli = AppGroup("users", help="User accounts.")
demo_cli = AppGroup("demo", help="The demo consortium.")


def _user(username: str) -> User:
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


@token_cli.command("create")
@click.argument("username")
@click.option("--name", default="integration", help="What the token is for.")
def token_create(username: str, name: str) -> None:
    """Create a bearer token for USERNAME and print it (it is shown only once)."""
    set_origin(Origin("cli"))
    _row, token = accounts.create_api_token(_user(username), name)
    db.session.commit()
    click.echo(token)


@token_cli.command("list")
@click.option("--user", "username", default=None, help="Only this user's tokens.")
def token_list(username: str | None) -> None:
    """List tokens: id, user, name, prefix, created, revoked."""
    for row in accounts.list_api_tokens(username):
        click.echo(
            "\t".join(
                [
                    str(row.id),
                    row.user.username,
                    row.name,
                    row.prefix + "…",
                    row.created_at.isoformat(timespec="seconds"),
                    row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "active",
                ]
            )
        )


@token_cli.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke the token with id TOKEN_ID."""
    set_origin(Origin("cli"))
    try:
        row = accounts.revoke_api_token(token_id)
    except Exception as exc:  # NotFound carries the message to show
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"revoked token {row.id} of {row.user.username}")


@users_cli.command("list")
def users_list() -> None:
    """Print username, role, institution and department, tab-separated."""
    users = db.session.execute(select(User).order_by(User.institution_id, User.username))
    for user in users.scalars():
        click.echo(
            "\t".join(
                [
                    user.username,
                    user.role.value,
                    user.institution.name,
                    user.department.name if user.department else "",
                ]
            )
        )


@users_cli.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable USERNAME: sign-in, sessions, tokens and live sockets stop at once."""
    set_origin(Origin("cli"))
    accounts.disable_user(_user(username))
    db.session.commit()
    click.echo(f"disabled {username}")


@demo_cli.command("seed")
@click.option("--force", is_flag=True, help="Seed even if the database has data.")
def demo_seed(force: bool) -> None:
    """Create the demo consortium when the database is empty; print the logins."""
    from telemed import demo

    set_origin(Origin("cli"))
    saved = Path(current_app.instance_path) / "demo_logins.txt"
    if not force and db.session.execute(select(User.id).limit(1)).first() is not None:
        if saved.exists():
            click.echo(saved.read_text())
        else:
            click.echo("the database already holds data; demo not seeded")
        return
    logins = demo.seed()
    db.session.commit()
    text = demo.describe_logins(logins)
    # Kept (readable by this user only) so that the next `make run` can show them again.
    saved.write_text(text + "\n")
    saved.chmod(0o600)
    click.echo(text)


@click.command("live")
@click.option("--host", default=None, help="Overrides TELEMED_LIVE_HOST.")
@click.option("--port", default=None, type=int, help="Overrides TELEMED_LIVE_PORT.")
def live_command(host: str | None, port: int | None) -> None:
    """Serve the live-consult sockets alone (production runs several of these)."""
    from flask import current_app

    from telemed.live.server import LiveSettings, run_forever

    app = current_app._get_current_object()
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    try:
        run_forever(app, LiveSettings.from_app(app, **overrides))
    except RuntimeError as refusal:  # Redis required but unreachable: say why, no traceback
        raise click.ClickException(str(refusal)) from None


def init_app(app: Flask) -> None:
    from telemed.dicomnode.cli import dicom_cli
    from telemed.jobs.cli import jobs_cli
    from telemed.runner import serve_command

    for group in (token_cli, users_cli, demo_cli, jobs_cli, dicom_cli):
        app.cli.add_command(group)
    app.cli.add_command(serve_command)
    app.cli.add_command(live_command)
