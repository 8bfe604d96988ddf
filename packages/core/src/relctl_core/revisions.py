"""The newest schema revision, read from the migration files without Alembic or SQLAlchemy: what a
command checks the run database against before it reads."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from relctl_core.errors import RelctlError

MIGRATIONS = Path(__file__).with_name("migrations")


@cache
def head_revision() -> str:
    """The newest migration: the revision that no other migration revises.

    Read from the migration files' own ``revision`` and ``down_revision`` assignments rather than
    through Alembic, so that checking the schema costs a command no Alembic import (test_migrations
    checks that Alembic finds the same head)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
            if not isinstance(target, ast.Name) or getattr(node, "value", None) is None:
                continue
            value = ast.literal_eval(node.value)  # type: ignore[arg-type]
            if target.id == "revision":
                revisions.add(value)
            elif target.id == "down_revision" and value is not None:
                revised.update([value] if isinstance(value, str) else value)
    heads = revisions - revised
    if len(heads) != 1:
        raise RelctlError(f"the migrations in {MIGRATIONS} have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()
