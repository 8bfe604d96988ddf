# The README's commands. `make demo` runs a real experiment end to end; `make test` runs what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export RELCTL_HOME ?= $(CURDIR)/.relctl
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# The evaluator's MLflow export is an extra (workers need none of it); development installs it.
EXTRAS_evaluator := [mlflow]
PACKAGES := packages/core packages/translator packages/splitter packages/trainer packages/evaluator packages/cli packages/ui

.PHONY: install demo test lint bench bench-translate bench-leaderboard clean

# torch is pinned to 2.13.0 first: an open range would pull several GB of CUDA wheels. DeepSpeed
# (resources.launcher: deepspeed) is built against that torch, not one that build isolation would fetch.
$(VENV)/.installed: $(foreach p,$(PACKAGES),$(p)/pyproject.toml) requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check $(foreach p,$(PACKAGES),-e $(p)$(EXTRAS_$(notdir $(p)))) -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-build-isolation deepspeed==0.19.8
	touch $@

install: $(VENV)/.installed

# db upgrade: a run database kept in .relctl from an older relctl is refused until upgraded.
demo: install
	$(BIN)/relctl models install multilingual-e5-small
	$(BIN)/relctl db upgrade
	$(BIN)/relctl run examples/demo/experiment.yaml

test: install
	$(BIN)/relctl models install multilingual-e5-small
	$(BIN)/relctl models install gemma-3-270m
	$(BIN)/ruff check packages tests bench
	$(BIN)/python -m pytest

bench: install
	$(BIN)/relctl models install multilingual-e5-small
	$(BIN)/python bench/qc_sample.py

# The translator: speed against the naive loop and a cached pass, then chrF per language on the reference set.
bench-translate: install
	$(BIN)/relctl models install gemma-3-270m
	$(BIN)/python bench/translate_speed.py
	$(BIN)/python bench/translation_quality.py

# The leaderboard and `relctl list` at 100, 1,000 and 10,000 experiments against hand-written SQL (PostgreSQL on
# 127.0.0.1), and the Python ranking they replaced (e3b9bf0) up to 1,000.
bench-leaderboard: install
	$(BIN)/python bench/leaderboard_bench.py --old e3b9bf0

clean:
	rm -rf $(VENV) .relctl
