"""The F1avg pairs of the run database (tables.pairs), kept in step with the metrics they average.

The overall leaderboard shows F1avg = 0.5 F1(QC) + 0.5 F1(QI) for runs that differ only in their task.
Pairing them needs every finished run's CV means, so the pairs are computed when the metrics are
written (a stage's metrics, in the transaction that records them) rather than at each look, and the
board reads its top off the pairs' ranking index.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text

from relctl_core import read_statements
from relctl_core.tables import pairs

# Serialises the refreshes of one experiment's pairs across workers (PostgreSQL advisory lock space).
_PAIRS_LOCK = 0x70616972

_COLUMNS = ("experiment_id", "metric", "qc_run_id", "qi_run_id", "both", "value", "qc")


def refresh_pairs(connection: Any, experiment_id: int | None) -> None:
    """Recompute the pairs of one experiment (of every experiment with None) from its CV means, in the
    caller's transaction. On PostgreSQL, two workers that record an experiment's QC and QI metrics at
    once take turns here, so that the second pairs with what the first committed (each statement of a
    READ COMMITTED transaction sees what was committed before it ran)."""
    if connection.dialect.name == "postgresql" and experiment_id is not None:
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _PAIRS_LOCK, "key": experiment_id}
        )
    which = {} if experiment_id is None else {"experiment": experiment_id}
    removed = delete(pairs)
    if experiment_id is not None:
        removed = removed.where(pairs.c.experiment_id == experiment_id)
    connection.execute(removed)
    connection.execute(
        pairs.insert().from_select(_COLUMNS, read_statements.pairing(experiment_id is not None)), which
    )


def pair_rows(connection: Any, experiment_id: int) -> list[dict[str, Any]]:
    """An experiment's stored pairs, as dicts (for tests and checks)."""
    query = (
        select(*(pairs.c[name] for name in _COLUMNS))
        .where(pairs.c.experiment_id == experiment_id)
        .order_by(pairs.c.metric, pairs.c.qc_run_id)
    )
    return [dict(r) for r in connection.execute(query).mappings()]
