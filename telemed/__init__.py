"""telemed: a medical consortium shares its specialists with grassroots institutions."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The application factory: configuration, extensions, blueprints, commands."""
    instance_path = os.environ.get("TELEMED_INSTANCE_DIR") or str(PROJECT_ROOT / "instance")
    app = Flask(
        __name__,
        instance_path=instance_path,
        static_folder=str(PROJECT_ROOT / "static"),
        static_url_path="/static",
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from telemed.config import build_config

    app.config.from_mapping(build_config(Path(app.instance_path)))
    if test_config:
        app.config.update(test_config)

    from telemed import logs

    logs.configure(app)
    _init_extensions(app)

    from telemed import cli, web
    from telemed.services.wiring import connect_areas

    connect_areas()
    web.init_app(app)
    cli.init_app(app)
    return app


def _init_extensions(app: Flask) -> None:
    from telemed import models  # noqa: F401  (registers every table on the metadata)
    from telemed.db import configure_sqlite
    from telemed.extensions import babel, csrf, db, login_manager, migrate
    from telemed.i18n import select_locale

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine, app.config["TELEMED_SQLITE_BUSY_TIMEOUT_MS"])
    logging.getLogger(__name__).debug("extensions ready")
