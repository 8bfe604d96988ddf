"""self-healing stages: the holding worker's identity, lost attempts, and stages waiting on a twin

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("losses", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("waits_for", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stages", schema=None) as batch_op:
        batch_op.drop_column("waits_for")
        batch_op.drop_column("losses")
        batch_op.drop_column("worker_id")
