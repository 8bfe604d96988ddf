"""Benchmark: the causal-lm translator against the naive loop, and a second, cached pass, in one run.

1,000 unique non-English queries of the real QC sample go through relctl's translator (Gemma-3-270M from
the model store; unique texts only, sorted by length, batched, the few-shot prefix computed once, answers
bounded by the source length) into a fresh translation cache. A random sample of them goes through the
naive loop: one `generate` per query over the whole prompt, same model, same greedy decoding, same stops
and bound; its answers are compared with the translator's. Then the 1,000 queries again, all cached.
Prints queries per second of each and the ratios; raw figures go to bench/translate_speed.last.json.

    .venv/bin/python bench/translate_speed.py [--queries 1000] [--naive 100] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SAMPLE = BENCH.parent.parent / "shared" / "data" / "qc-sample" / "train_QC.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="queries the naive loop translates (a random sample)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="gemma-3-270m")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RELCTL_MODEL_STORE", str(BENCH.parent / ".relctl" / "models"))

    from relctl_core.migrate import ensure_schema
    from relctl_core.settings import load_settings
    from relctl_translator.backends import make_backend
    from relctl_translator.translate import translate_queries

    queries, languages = unique_queries(args.queries)
    database = f"sqlite:///{Path(tempfile.mkdtemp(prefix='relctl-translate-bench-')) / 'cache.db'}"
    ensure_schema(database)
    started = time.monotonic()
    backend = make_backend("causal-lm", args.model, None, settings=load_settings(), batch_size=args.batch_size)
    load_seconds = time.monotonic() - started

    started = time.monotonic()
    english, first = translate_queries(database, backend, queries, languages, batch_size=args.batch_size)
    fast_seconds = time.monotonic() - started

    picked = random.Random(7).sample(range(len(queries)), args.naive)
    started = time.monotonic()
    naive = {queries[i]: backend.translate_naive(queries[i], languages[i]) or queries[i] for i in picked}
    naive_seconds = time.monotonic() - started
    same = sum(english[q] == answer for q, answer in naive.items())

    started = time.monotonic()
    again, second = translate_queries(database, backend, queries, languages, batch_size=args.batch_size)
    cached_seconds = time.monotonic() - started
    assert again == english and second.cached == len(queries) and second.translated == 0

    fast_qps, naive_qps = len(queries) / fast_seconds, args.naive / naive_seconds
    figures = {
        "queries": len(queries),
        "languages": sorted(set(languages)),
        "batch_size": args.batch_size,
        "threads": __import__("torch").get_num_threads(),
        "model_load_seconds": round(load_seconds, 1),
        "translator_seconds": round(fast_seconds, 1),
        "translator_qps": round(fast_qps, 3),
        "naive_queries": args.naive,
        "naive_seconds": round(naive_seconds, 1),
        "naive_qps": round(naive_qps, 3),
        "speedup": round(fast_qps / naive_qps, 2),
        "same_answers": f"{same}/{args.naive}",
        "failed": first.failed,
        "cached_seconds": round(cached_seconds, 3),
        "cached_speedup": round(fast_seconds / cached_seconds, 1),
        "examples": [[languages[i], queries[i], english[queries[i]]] for i in picked[:12]],
    }
    print(f"translator: {len(queries)} queries in {fast_seconds:.1f} s = {fast_qps:.2f} q/s (batch {args.batch_size})")
    print(f"naive loop: {args.naive} queries in {naive_seconds:.1f} s = {naive_qps:.3f} q/s; same answers {same}/{args.naive}")
    print(f"speed-up over the naive loop: {fast_qps / naive_qps:.1f}x")
    print(f"second pass, all cached: {cached_seconds:.3f} s = {fast_seconds / cached_seconds:.0f}x faster than the first")
    print(f"failed (kept as written): {first.failed}")
    (BENCH / "translate_speed.last.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


def unique_queries(count: int) -> tuple[list[str], list[str]]:
    """`count` unique non-English queries of the QC sample, a fixed random choice, with their languages."""
    first_language: dict[str, str] = {}
    with SAMPLE.open(encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            query = " ".join(row["origin_query"].split()).lower()
            if row["language"] != "en" and query:
                first_language.setdefault(query, row["language"])
    chosen = random.Random(42).sample(sorted(first_language), count)
    return chosen, [first_language[q] for q in chosen]


if __name__ == "__main__":
    sys.exit(main())
