"""notifications and referral steps keep a message key and its parameters, worded when read

A notification used to store its title and body already worded in the recipient's
language of that moment. New rows store the key of their message and its parameters;
title and body stay for the rows written before, which are shown as they are. A
referral step's note by the system is kept the same way (note_key, note_params); its
note column keeps what a person wrote. A person's title (主任医师...) is stored as its code.

Revision ID: 5e1f0c2a9b7d
Revises: 1fb6d23a6053
Create Date: 2026-12-07 19:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1f0c2a9b7d'
down_revision = '1fb6d23a6053'
branch_labels = None
depends_on = None

TITLE_CODES = {
    "主任医师": "chief_physician",
    "副主任医师": "associate_chief_physician",
    "主治医师": "attending_physician",
    "住院医师": "resident_physician",
}


def upgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_key', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))
        batch_op.alter_column('title', existing_type=sa.String(length=200), nullable=True)
    # The notes the system writes on a referral's steps, the same way.
    with op.batch_alter_table('referral_transition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note_key', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('note_params', sa.JSON(), nullable=True))


    # A person's title becomes a code worded through the label registry; text that names
    # no known title (a department written there) is dropped.
    for text, code in TITLE_CODES.items():
        op.execute(
            sa.text("UPDATE user_account SET title = :code WHERE title = :text").bindparams(
                code=code, text=text
            )
        )
    op.execute(
        sa.text("UPDATE user_account SET title = NULL WHERE title NOT IN :codes").bindparams(
            sa.bindparam("codes", value=list(TITLE_CODES.values()), expanding=True)
        )
    )


def downgrade():
    for text, code in TITLE_CODES.items():
        op.execute(
            sa.text("UPDATE user_account SET title = :text WHERE title = :code").bindparams(
                code=code, text=text
            )
        )
    with op.batch_alter_table('referral_transition', schema=None) as batch_op:
        batch_op.drop_column('note_params')
        batch_op.drop_column('note_key')
    op.execute("UPDATE notification SET title = kind WHERE title IS NULL")
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.alter_column('title', existing_type=sa.String(length=200), nullable=False)
        batch_op.drop_column('params')
        batch_op.drop_column('message_key')
