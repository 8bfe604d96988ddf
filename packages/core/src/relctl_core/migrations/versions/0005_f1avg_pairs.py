"""F1avg pairs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 02:00:00

The overall leaderboard's F1avg pairs, stored when the metrics they average are written (relctl_core.
pairs), so that the board reads its top off an index instead of pairing every finished run at each
look. Filled here from the metrics already recorded.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("qc_run_id", sa.Integer(), nullable=False),
        sa.Column("qi_run_id", sa.Integer(), nullable=False),
        sa.Column("both", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("qc", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["qc_run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["qi_run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pairs_experiment_id", "pairs", ["experiment_id"], unique=False)
    op.create_index("ix_pairs_ranking", "pairs", ["metric", sa.text("value DESC"), sa.text("qc DESC"), "qc_run_id"], unique=False)
    # The pairs of the runs scored so far: the pairing as relctl_core.pairs computes it at this revision.
    from relctl_core.pairs import refresh_pairs

    refresh_pairs(op.get_bind(), None)


def downgrade() -> None:
    op.drop_index("ix_pairs_ranking", table_name="pairs")
    op.drop_index("ix_pairs_experiment_id", table_name="pairs")
    op.drop_table("pairs")
