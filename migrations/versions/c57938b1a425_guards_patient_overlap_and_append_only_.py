"""guards: patient overlap and append-only audit

Invariants the database keeps whatever code path writes:
- a patient never holds two seat-occupying bookings in overlapping time
  (PostgreSQL: an exclusion constraint; SQLite: triggers, race-free under its single writer);
- the audit log is append-only (UPDATE and DELETE are refused by triggers).

Revision ID: c57938b1a425
Revises: 69c207a7a919
Create Date: 2026-11-23 15:14:19.823722

"""
from alembic import op
import sqlalchemy as sa

import telemed.db


# revision identifiers, used by Alembic.
revision = 'c57938b1a425'
down_revision = '69c207a7a919'
branch_labels = None
depends_on = None


OCCUPYING = "('held', 'offered', 'booked', 'checked_in', 'completed', 'no_show')"


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE booking ADD CONSTRAINT ex_booking_patient_overlap "
            "EXCLUDE USING gist (patient_id WITH =, tstzrange(starts_at, ends_at) WITH &&) "
            f"WHERE (patient_id IS NOT NULL AND status IN {OCCUPYING})"
        )
        op.execute(
            """
            CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_event is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER tr_audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    else:
        overlap = (
            "SELECT RAISE(ABORT, 'ex_booking_patient_overlap') WHERE NEW.patient_id IS NOT NULL "
            f"AND NEW.status IN {OCCUPYING} AND EXISTS (SELECT 1 FROM booking b "
            "WHERE b.patient_id = NEW.patient_id AND b.id IS NOT NEW.id "
            f"AND b.status IN {OCCUPYING} "
            "AND b.starts_at < NEW.ends_at AND b.ends_at > NEW.starts_at)"
        )
        op.execute(
            "CREATE TRIGGER tr_booking_patient_overlap_insert BEFORE INSERT ON booking "
            f"BEGIN {overlap}; END"
        )
        op.execute(
            "CREATE TRIGGER tr_booking_patient_overlap_update "
            "BEFORE UPDATE OF patient_id, status, starts_at, ends_at ON booking "
            f"BEGIN {overlap}; END"
        )
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER tr_audit_event_no_{action.lower()} BEFORE {action} ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
            )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS tr_audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
        op.execute("ALTER TABLE booking DROP CONSTRAINT IF EXISTS ex_booking_patient_overlap")
    else:
        for name in (
            "tr_booking_patient_overlap_insert",
            "tr_booking_patient_overlap_update",
            "tr_audit_event_no_update",
            "tr_audit_event_no_delete",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
