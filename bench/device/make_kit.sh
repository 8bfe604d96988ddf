#!/usr/bin/env bash
# Fills .device-kit/ (ignored by git) with what bench/device/gpu_check.sh needs on a GPU host that has
# Python 3.12 with torch, transformers and peft but no network: wheels of relctl's trainer and of the
# few packages it needs beyond those, the QC sample, and the backbones' configs and tokenizers (no
# weights: gpu_check.sh gives them seeded random ones, for speed figures). Run from the repository root
# after `make install` and `relctl models install gemma-3-270m multilingual-e5-small`.
set -euo pipefail
KIT=.device-kit
STORE=${RELCTL_MODEL_STORE:-.relctl/models}
SAMPLE=../shared/data/qc-sample/train_QC.jsonl
PYTHON_VERSION=${KIT_PYTHON_VERSION:-3.12}

rm -rf "$KIT"
mkdir -p "$KIT/wheels" "$KIT/models" "$KIT/qc-sample"
# Built from copies, so that setuptools leaves no build/ folders in the packages.
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp -r packages/core packages/trainer "$build/"
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$KIT/wheels" "$build/core" "$build/trainer"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$KIT/wheels" $(.venv/bin/python -m pip list --format=freeze 2>/dev/null |
        grep -i -E '^(pydantic|pydantic[-_]core|annotated[-_]types|typing[-_]inspection|typing[-_]extensions)==')
cp "$SAMPLE" "$KIT/qc-sample/"
for model in gemma-3-270m multilingual-e5-small; do
    [ -f "$STORE/$model/config.json" ] || { echo "error: $STORE/$model: not installed (relctl models install $model)" >&2; exit 2; }
    mkdir -p "$KIT/models/$model"
    for file in "$STORE/$model"/*; do
        case "$file" in
            *.safetensors) ;;
            *tokenizer.json) gzip -9 -c "$file" > "$KIT/models/$model/$(basename "$file").gz" ;;
            *) cp "$file" "$KIT/models/$model/" ;;
        esac
    done
done
du -sh "$KIT"
ls "$KIT/wheels"
