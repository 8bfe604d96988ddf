"""leaderboard indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:00:00

The leaderboard ranks, filters and pairs runs in SQL: a partial index over the CV aggregates (fold
NULL) that the ranking reads alone, a run's metrics by name, fold and language for the rows shown
(replacing the one by run and name), and an experiment's metrics by name for chrF (replacing the one by
experiment alone, which it also serves).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_metrics_run_name")
        batch_op.drop_index("ix_metrics_experiment_id")
        batch_op.create_index(
            "ix_metrics_ranking",
            ["name", "language", "task", sa.text("value DESC"), "run_id"],
            unique=False,
            postgresql_where=sa.text("fold IS NULL"),
            sqlite_where=sa.text("fold IS NULL"),
        )
        batch_op.create_index("ix_metrics_run_name", ["run_id", "name", "fold", "language"], unique=False)
        batch_op.create_index("ix_metrics_experiment_name", ["experiment_id", "name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_metrics_experiment_name")
        batch_op.drop_index("ix_metrics_run_name")
        batch_op.drop_index("ix_metrics_ranking")
        batch_op.create_index("ix_metrics_experiment_id", ["experiment_id"], unique=False)
        batch_op.create_index("ix_metrics_run_name", ["run_id", "name"], unique=False)
