"""row versions of slots, seats, bookings, cases and referrals

Each of these rows gets a ``row_version`` counter that the database raises on every
UPDATE, whoever writes it: FHIR serves it as ``meta.versionId`` and weak ETags, and an
``If-Match`` naming an older one is refused. PostgreSQL: a BEFORE UPDATE trigger sets
it to the old value plus one; SQLite: an AFTER UPDATE trigger writes it (it does not
fire itself, and it only runs when the statement left the counter alone).

Revision ID: 4f1d2c7a9b60
Revises: 826064b78972
Create Date: 2026-12-07 19:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4f1d2c7a9b60'
down_revision = '826064b78972'
branch_labels = None
depends_on = None

VERSIONED_TABLES = ("slot", "slot_seat", "booking", "clinical_case", "referral")


def upgrade():
    # Plain ADD COLUMN (no batch copy): the tables keep their triggers on SQLite.
    for table in VERSIONED_TABLES:
        op.add_column(
            table,
            sa.Column("row_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION bump_row_version() RETURNS trigger AS $$
            BEGIN
                NEW.row_version := OLD.row_version + 1;
                RETURN NEW;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in VERSIONED_TABLES:
            op.execute(
                f"CREATE TRIGGER tr_{table}_row_version BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION bump_row_version()"
            )
    else:
        for table in VERSIONED_TABLES:
            op.execute(
                f"CREATE TRIGGER tr_{table}_row_version AFTER UPDATE ON {table} "
                "FOR EACH ROW WHEN NEW.row_version = OLD.row_version "
                f"BEGIN UPDATE {table} SET row_version = OLD.row_version + 1 "
                "WHERE id = NEW.id; END"
            )


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in VERSIONED_TABLES:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_row_version ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_row_version")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS bump_row_version()")
    for table in VERSIONED_TABLES:
        # In place (SQLite 3.35+): a batch copy would lose the tables' other triggers.
        op.drop_column(table, "row_version")
