"""notifications keep a message key and its parameters, worded when read

A notification used to store its title and body already worded in the recipient's
language of that moment. New rows store the key of their message and its parameters;
title and body stay for the rows written before, which are shown as they are.

Revision ID: 5e1f0c2a9b7d
Revises: 826064b78972
Create Date: 2026-12-07 19:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1f0c2a9b7d'
down_revision = '826064b78972'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_key', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))
        batch_op.alter_column('title', existing_type=sa.String(length=200), nullable=True)


def downgrade():
    op.execute("UPDATE notification SET title = kind WHERE title IS NULL")
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.alter_column('title', existing_type=sa.String(length=200), nullable=False)
        batch_op.drop_column('params')
        batch_op.drop_column('message_key')
