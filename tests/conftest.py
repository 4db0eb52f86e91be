"""Fixtures shared by every test layer.

The database is real: SQLite by default, PostgreSQL when TELEMED_TEST_DATABASE_URL
names one. The schema is built once per run by the migrations; each test then starts
clean (SQLite: a fresh copy of the migrated file; PostgreSQL: every table truncated in
a database of this run's own, so parallel runs never meet).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

_RUN_DIR = Path(tempfile.mkdtemp(prefix="telemed-tests-"))
os.environ.setdefault("TELEMED_SECRET_KEY", "tests-" + uuid.uuid4().hex)
os.environ["TELEMED_INSTANCE_DIR"] = str(_RUN_DIR / "instance")
os.environ.pop("TELEMED_REDIS_URL", None)  # tests opt in to Redis explicitly

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from telemed import clock, create_app  # noqa: E402
from telemed.db import reset_write_intent, set_write_intent  # noqa: E402
from telemed.extensions import db  # noqa: E402
from tests import factories  # noqa: E402

TEST_DATABASE_URL = os.environ.get("TELEMED_TEST_DATABASE_URL", "").strip()
TEST_REDIS_URL = os.environ.get("TELEMED_TEST_REDIS_URL", "").strip()
USING_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_template() -> Iterator[str]:
    """A migrated database for this run: a template file, or a PostgreSQL database."""
    if USING_POSTGRES:
        base = make_url(TEST_DATABASE_URL)
        name = f"telemed_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
        try:
            _migrate(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()
    else:
        path = _RUN_DIR / "template.sqlite"
        _migrate(f"sqlite:///{path}")
        yield str(path)


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> str:
    if USING_POSTGRES:
        _truncate_postgres(database_template)
        return database_template
    path = tmp_path / "telemed.sqlite"
    shutil.copyfile(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app(database_url: str, tmp_path: Path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "TELEMED_STORAGE_DIR": str(tmp_path / "storage"),
            "TELEMED_REDIS_URL": TEST_REDIS_URL or None,
        }
    )
    # The test's own reads must not hold SQLite's write lock while a served request
    # (another thread) waits for it: in the test thread, transactions begin deferred.
    app.test_client_class = IsolatedClient
    token = set_write_intent(False)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    reset_write_intent(token)


class IsolatedClient(FlaskClient):
    """Each request runs in an application context of its own, as in production.

    The test itself holds an app context (for factories and assertions); without this,
    requests would share its ``g`` and its database session.
    """

    def open(self, *args, **kwargs):
        # End the test's own transaction: the request sees what the test wrote, and the
        # test's next query sees what the request wrote.
        db.session.commit()
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def frozen_clock():
    """Time that moves only when the test says so; starts on a Monday morning in Shanghai."""
    from datetime import UTC, datetime

    frozen = clock.FrozenClock(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    clock.use(frozen)
    yield frozen
    clock.use(None)


@pytest.fixture
def world(app):
    """A small consortium: lead hospital, three member institutions, people, patients."""
    built = factories.build_world()
    db.session.commit()
    return built


class ServerThread:
    """The app served by waitress in this process, on a free port, for real HTTP."""

    def __init__(self, app, threads: int = 16) -> None:
        from telemed.http_server import create_server

        self.server = create_server(
            app, host="127.0.0.1", port=0, threads=threads, connection_limit=2000
        )
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        from waitress import wasyncore

        # Let handler threads finish first (they signal the loop's trigger when done).
        self.server.task_dispatcher.shutdown(timeout=5)
        # Close every socket from inside the server's own loop; the loop then ends.
        try:
            self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        except OSError as error:
            # The loop's wake-up pipe is closed already (seen once in a whole-suite run,
            # after the test had passed), so nothing can wake the loop to run the thunk. It
            # polls once a second: closing the sockets from here ends it as well. Printed,
            # so a run that needed this shows it.
            print(f"test server: wake-up pipe already closed ({error})", file=sys.stderr)
            wasyncore.close_all(self.server._map, ignore_all=True)
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the test server did not stop within 10 s"
        self.server.task_dispatcher.shutdown()


@pytest.fixture
def live_http(app):
    with ServerThread(app) as server:
        yield server


@pytest.fixture(autouse=True)
def _fhir_answers_are_valid(request):
    """Whatever a test asks of /fhir, the answer must be a valid FHIR resource."""
    if "app" not in request.fixturenames:
        yield
        return
    from tests import fhir_conformance

    seen = fhir_conformance.watch(request.getfixturevalue("app"))
    yield
    problems = seen.problems + fhir_conformance.r4_errors(seen.answers)
    assert not problems, "invalid FHIR answers:\n" + "\n".join(problems)
