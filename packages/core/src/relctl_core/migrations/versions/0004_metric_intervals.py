"""metric intervals

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00

A CV aggregate carries the 95 % bootstrap interval of its mean (resampled by query), so that the
leaderboard shows how sure each figure is without reading a run's rows. NULL where none was computed:
per-fold rows, metrics that are not resampled, and runs scored before this revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without a default: PostgreSQL adds them without rewriting the table.
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("low", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("high", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_column("high")
        batch_op.drop_column("low")
