"""Neural translation in the pipeline: the causal-lm backend in an embedded experiment (a tiny random Gemma-3
built here), chrF per language stored with the translate stage and shown beside per-language F1; and the
real Gemma-3-270M from the model store translating real queries exactly as the plain loop does."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support import experiment_rows, relctl
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"
STORE = Path(__file__).resolve().parents[1] / ".relctl" / "models"

SPEC = """\
name: translated
data:
  qi: {{train: data/qi_train.jsonl, max_rows: 120}}
task: qi
translation: {{enabled: true, mode: orig+en, backend: causal-lm{model}}}
split: {{strategy: category-aware, folds: 3, train_folds: [0]}}
model: {{backbone: {backbone}}}
train: {{epochs: 1, batch_size: 16, max_length: 32}}
"""


def test_causal_lm_translation_runs_in_the_pipeline_and_its_chrf_is_stored(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    from relctl_translator.reference import LANGUAGES
    from relctl_translator.testing import build_tiny_causal_lm

    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qi_train.jsonl"])
    build_tiny_causal_lm(directory=work / "tiny-lm")
    (work / "experiment.yaml").write_text(SPEC.format(model=f", model: {work / 'tiny-lm'}", backbone=work / "tiny"))

    done = relctl("run", "experiment.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    status = json.loads(relctl("status", "1", "--json", env=relctl_env).stdout)
    (translate,) = [s for s in status["stages"] if s["stage"].startswith("translate")]
    assert translate["status"] == "done"
    progress = translate["last_progress"]  # the last report: the reference set, done/total with a rate
    assert progress["done"] == progress["total"] > 0 and progress["rate"] > 0 and progress["unit"] == "reference queries"

    (summary,) = json.loads(relctl("show", "1", "--json", env=relctl_env).stdout)["translations"]
    assert summary["translated"] + summary["failed"] + summary["english_passthrough"] == summary["unique_queries"] > 0
    quality = summary["chrf"]
    assert sorted(quality) == sorted(LANGUAGES)
    assert all(0 <= value <= 100 for value in quality.values())
    assert "chrF on the reference set" in relctl("show", "1", env=relctl_env).stdout

    by_language = json.loads(relctl("leaderboard", "--by", "language", "--json", env=relctl_env).stdout)["rows"]
    shown = {r["language"]: r["chrf"] for r in by_language if r["kind"] == "model" and "chrf" in r}
    assert shown and all(shown[lang] == quality[lang] for lang in shown)
    assert not [r for r in by_language if r["kind"] == "baseline" and "chrf" in r]  # baselines read no translation
    assert "chrf" in relctl("leaderboard", "--by", "language", env=relctl_env).stdout
    logs = relctl("logs", "1", env=relctl_env).stdout
    assert "chrF on the reference set" in logs and "loaded causal-lm model" in logs


def test_the_default_translation_model_missing_from_the_store_is_bad_input(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    (work / "experiment.yaml").write_text(SPEC.format(model="", backbone=work / "missing-is-checked-later"))
    env = {**relctl_env, "RELCTL_MODEL_STORE": str(tmp_path / "empty-store")}
    done = relctl("run", "experiment.yaml", env=env, cwd=work)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "translation.model: model 'gemma-3-270m' is not installed" in " ".join(done.stderr.split())
    assert experiment_rows(Path(relctl_env["RELCTL_HOME"])) == 0


@pytest.fixture(scope="module")
def gemma() -> object:
    """The real Gemma-3-270M from the project's model store (`relctl models install gemma-3-270m`)."""
    from relctl_core.modelstore import INFO_FILE

    if not (STORE / "gemma-3-270m" / INFO_FILE).is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("gemma-3-270m is not installed in .relctl/models (make test installs it)")
        pytest.skip("gemma-3-270m is not installed: relctl models install gemma-3-270m")
    from relctl_core.settings import load_settings
    from relctl_translator.backends import make_backend

    settings = load_settings({"RELCTL_MODEL_STORE": str(STORE), "RELCTL_HOME": str(STORE.parent)})
    return make_backend("causal-lm", None, None, settings=settings, batch_size=8)


def test_real_gemma_translates_real_queries_as_the_plain_loop_does(gemma: object) -> None:
    from relctl_translator.causal_lm import FEW_SHOT
    from relctl_translator.quality import chrf
    from relctl_translator.reference import load_reference

    rows = [r for r in load_reference() if r[0] in ("ja", "ko", "ar")][::4][:9]
    texts, languages, references = [r[1] for r in rows], [r[0] for r in rows], [r[2] for r in rows]
    answers = gemma.translate(texts, languages)  # type: ignore[attr-defined]
    assert answers == [gemma.translate_naive(t, lang) for t, lang in zip(texts, languages, strict=True)]  # type: ignore[attr-defined]
    english = [a or t for a, t in zip(answers, texts, strict=True)]
    assert sum(a is not None for a in answers) >= len(rows) - 2
    assert all(a is None or a.isascii() or any(c.isascii() and c.isalpha() for c in a) for a in answers)
    assert not {a for a in answers if a} & {e for _, _, e in FEW_SHOT}  # never a prompt example's answer
    # English output beats leaving the text as it is by a wide margin in non-Latin scripts.
    assert chrf(english, references) > chrf(texts, references) + 15
