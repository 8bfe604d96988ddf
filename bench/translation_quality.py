"""Translation quality: chrF per language on the reference set for every backend that can run here.

The reference set (packages/translator/src/relctl_translator/reference/queries.tsv) holds hand-written
English for 9 languages of real-looking shop queries. Backends: identity (the untranslated floor),
causal-lm with Gemma-3-270M from the model store, and apertium (Spanish only) where Debian's
apertium-eng-spa is installed. Prints a Markdown table for bench/RESULTS.md, each chrF with its 95 %
bootstrap interval over the language's reference rows (1,000 resamples), and the mean over languages
with the interval of the mean (the languages' rows are apart, so their half-widths add in quadrature).

    .venv/bin/python bench/translation_quality.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESAMPLES = 1000


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RELCTL_MODEL_STORE", str(BENCH.parent / ".relctl" / "models"))
    from relctl_core.migrate import ensure_schema
    from relctl_core.settings import load_settings
    from relctl_translator.backends import make_backend
    from relctl_translator.quality import reference_quality
    from relctl_translator.reference import LANGUAGES

    database = f"sqlite:///{Path(tempfile.mkdtemp(prefix='relctl-chrf-')) / 'cache.db'}"
    ensure_schema(database)
    settings = load_settings()
    backends = [("identity", None), ("causal-lm", "gemma-3-270m")]
    if shutil.which("apertium"):
        backends.append(("apertium", None))
    results: dict[str, dict[str, dict]] = {}
    for backend_name, model in backends:
        started = time.monotonic()
        backend = make_backend(backend_name, model, None, settings=settings, batch_size=64)
        results[f"{backend_name}" + (f" ({model})" if model else "")] = reference_quality(database, backend, batch_size=64, resamples=RESAMPLES)
        print(f"{backend_name}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    print("| backend | " + " | ".join(LANGUAGES) + " | mean |")
    print("|---|" + "---|" * (len(LANGUAGES) + 1))
    for name, quality in results.items():
        scores = [quality[lang]["chrf"] for lang in LANGUAGES]
        failed = sum(quality[lang]["failed"] for lang in LANGUAGES)
        cells = " | ".join(f"{quality[lang]['chrf']:.1f} [{quality[lang]['low']:.1f}, {quality[lang]['high']:.1f}]" for lang in LANGUAGES)
        # The languages' intervals are independent: the mean's half-width is the root of the summed
        # squared half-widths over the number of languages.
        half = sum(((quality[lang]["high"] - quality[lang]["low"]) / 2) ** 2 for lang in LANGUAGES) ** 0.5 / len(LANGUAGES)
        mean = sum(scores) / len(scores)
        print(f"| {name} | {cells} | {mean:.1f} [{mean - half:.1f}, {mean + half:.1f}] |" + (f" ({failed} failed)" if failed else ""))
    (BENCH / "translation_quality.last.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
