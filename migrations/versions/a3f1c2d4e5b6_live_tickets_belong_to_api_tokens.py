"""live tickets belong to the API token that asked for them

Revoking the token closes its sockets and voids its unused tickets.

Revision ID: a3f1c2d4e5b6
Revises: 4f1d2c7a9b60
Create Date: 2026-12-07 19:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3f1c2d4e5b6'
down_revision = '4f1d2c7a9b60'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('live_ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_token_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_live_ticket_api_token_id_api_token'), 'api_token', ['api_token_id'], ['id']
        )


def downgrade():
    with op.batch_alter_table('live_ticket', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_live_ticket_api_token_id_api_token'), type_='foreignkey')
        batch_op.drop_column('api_token_id')
