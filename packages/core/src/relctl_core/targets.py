"""The target side of a pair as the model reads it: a category path as given, or in a taxonomy-aware form.

``leaf-first`` writes a QC category path leaf first, then the levels above it from the top, marked:

    "watches,watches accessories,watchbands"  ->  "watchbands (in: watches > watches accessories)"

Why this form. The leaf is what decides relevance (most wrong categories share the top levels with a
right one), and pairs are cut to ``train.max_length`` tokens from their end, so a deep path's leaf is the
first thing truncation takes; written first, it is the last. Level names may hold ", " themselves
("automobiles, parts & accessories"), so in the path as given a reader cannot tell the levels apart;
" > " can. The parents stay, because a leaf alone is ambiguous ("accessories" under watches or phones).
"""

from __future__ import annotations

from relctl_core.data import category_levels

TARGET_FORMS = ("as-given", "leaf-first")


def target_text(target: str, task: str, form: str | None) -> str:
    """The text the model reads for ``target`` of a ``task`` (QC or QI) row under ``form`` (None: as
    given). Only QC category paths have levels; a QI item title is always as given."""
    if form not in (None, *TARGET_FORMS):
        raise ValueError(f"unknown target form {form!r}; expected one of {', '.join(TARGET_FORMS)}")
    if form in (None, "as-given") or task != "QC":
        return target
    *parents, leaf = category_levels(target)
    return f"{leaf} (in: {' > '.join(parents)})" if parents else leaf
