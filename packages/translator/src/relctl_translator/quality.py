"""Translation quality: chrF per language of a backend on the team's reference set (reference/queries.tsv)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from relctl_translator.backends import Backend
from relctl_translator.reference import load_reference
from relctl_translator.translate import translate_queries


def chrf(hypotheses: list[str], references: list[str]) -> float:
    """Corpus chrF (sacrebleu's defaults: character 6-grams, beta 2), 0-100."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().corpus_score(hypotheses, [references]).score)


def chrf_interval(hypotheses: list[str], references: list[str], *, resamples: int) -> tuple[float, float]:
    """The 95 % interval of corpus chrF over ``resamples`` bootstrap draws of the rows (one row is one
    query), as sacrebleu computes it: its resampled mean plus and minus its 95 % half-width."""
    from sacrebleu.metrics import CHRF

    score = CHRF().corpus_score(hypotheses, [references], n_bootstrap=resamples)
    return float(score._mean - score._ci), float(score._mean + score._ci)


def reference_quality(
    database_url: str,
    backend: Backend,
    *,
    batch_size: int = 16,
    on_progress: Callable[[int, int], None] | None = None,
    resamples: int = 0,
) -> dict[str, dict[str, Any]]:
    """language -> {chrf, rows, failed} of `backend` on the reference set, translated through the shared
    cache like any query (so it is computed once per backend and model). A failed row is scored as its
    untranslated text, as the pipeline would use it. With ``resamples`` (at least 2), each language
    also gets ``low`` and ``high``: the 95 % bootstrap interval of its chrF (chrf_interval)."""
    rows = load_reference()
    english, summary = translate_queries(
        database_url,
        backend,
        [query for _, query, _ in rows],
        [language for language, _, _ in rows],
        batch_size=batch_size,
        on_progress=on_progress,
    )
    by_language: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for language, query, reference in rows:
        hypotheses, references = by_language[language]
        hypotheses.append(english[query])
        references.append(reference)
    found: dict[str, dict[str, Any]] = {}
    for language, (hypotheses, references) in sorted(by_language.items()):
        found[language] = {"chrf": round(chrf(hypotheses, references), 2), "rows": len(hypotheses), "failed": summary.failed_by_language.get(language, 0)}
        if resamples >= 2:
            low, high = chrf_interval(hypotheses, references, resamples=resamples)
            found[language].update(low=round(low, 2), high=round(high, 2))
    return found
