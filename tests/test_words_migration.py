"""The migration to worded-when-read texts keeps what was there: a person's title in
Chinese becomes its code, an old notification keeps its words, and the way back restores
the titles."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text

from telemed import create_app
from telemed.extensions import db
from tests.conftest import TEST_DATABASE_URL, USING_POSTGRES

BEFORE = "826064b78972"
AFTER = "5e1f0c2a9b7d"


def test_titles_become_codes_and_old_notifications_stay_readable(tmp_path: Path):
    if USING_POSTGRES:
        from sqlalchemy.engine import make_url

        base = make_url(TEST_DATABASE_URL)
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        name = f"words_migration_{tmp_path.name[-8:].replace('-', '_')}"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'migrate.sqlite'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(revision=BEFORE)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO consortium (id, name, timezone, created_at) "
                    "VALUES (1, '医联体', 'Asia/Shanghai', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO institution (id, consortium_id, code, name, kind, created_at) "
                    "VALUES (1, 1, 'LEAD', '医院', 'lead', CURRENT_TIMESTAMP)"
                )
            )
            for ident, title in ((1, "主任医师"), (2, "医务科"), (3, None)):
                conn.execute(
                    text(
                        "INSERT INTO user_account (id, username, display_name, role, "
                        "institution_id, title, password_hash, is_enabled, created_at) "
                        "VALUES (:id, :u, '某人', 'specialist', 1, :title, 'x', true, "
                        "CURRENT_TIMESTAMP)"
                    ),
                    {"id": ident, "u": f"u{ident}", "title": title},
                )
            conn.execute(
                text(
                    "INSERT INTO notification (user_id, kind, title, body, created_at) "
                    "VALUES (1, 'old', '病例 1 的报告已签发', '正文', CURRENT_TIMESTAMP)"
                )
            )
        upgrade(revision=AFTER)
        with engine.connect() as conn:
            titles = dict(conn.execute(text("SELECT id, title FROM user_account")).all())
            note = conn.execute(text("SELECT title, body, message_key FROM notification")).one()
        assert titles == {1: "chief_physician", 2: None, 3: None}
        assert tuple(note) == ("病例 1 的报告已签发", "正文", None)

        downgrade(revision=BEFORE)
        with engine.connect() as conn:
            restored = conn.execute(text("SELECT title FROM user_account WHERE id = 1")).scalar()
        assert restored == "主任医师"
        engine.dispose()
        db.engine.dispose()  # the migrations' connections, closed here rather than by GC
    if USING_POSTGRES:
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
