"""job runs per consortium: a run belongs to one consortium or to the whole installation

A job about the consortia's own rows (holds, seats, reminders, no-shows, late reads, the
quota snapshot) runs once per consortium, so each consortium's admin sees the runs of
their own consortium and may run one by hand for it. ``scope`` ("all" or
"consortium:<id>") takes the consortium's place in the run's unique key, where a NULL
consortium id would never clash. Runs written before are the installation's.

Revision ID: 7a2c9e4b1d30
Revises: 5e1f0c2a9b7d
Create Date: 2026-12-07 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7a2c9e4b1d30'
down_revision = '5e1f0c2a9b7d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_run', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('scope', sa.String(length=40), nullable=False, server_default='all')
        )
        batch_op.add_column(sa.Column('consortium_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_job_run_consortium_id_consortium'), 'consortium', ['consortium_id'], ['id']
        )
        batch_op.drop_constraint('uq_job_run_job_id_scheduled_at', type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_job_run_job_id_scheduled_at_scope'), ['job_id', 'scheduled_at', 'scope']
        )
        batch_op.create_index('ix_job_run_consortium_job', ['consortium_id', 'job_id'], unique=False)
    with op.batch_alter_table('job_run', schema=None) as batch_op:
        batch_op.alter_column('scope', existing_type=sa.String(length=40), server_default=None)


def downgrade():
    op.execute("DELETE FROM job_run WHERE scope <> 'all'")
    with op.batch_alter_table('job_run', schema=None) as batch_op:
        batch_op.drop_index('ix_job_run_consortium_job')
        batch_op.drop_constraint(batch_op.f('uq_job_run_job_id_scheduled_at_scope'), type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_job_run_job_id_scheduled_at'), ['job_id', 'scheduled_at']
        )
        batch_op.drop_constraint(batch_op.f('fk_job_run_consortium_id_consortium'), type_='foreignkey')
        batch_op.drop_column('consortium_id')
        batch_op.drop_column('scope')
