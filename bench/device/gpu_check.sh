#!/usr/bin/env bash
# The trainer's GPU figures in one run, on a CUDA host with torch, transformers and peft and the
# .device-kit/ that bench/device/make_kit.sh fills: tokens per second and model FLOPs utilisation of
# relctl's trainer (bf16 autocast, dynamic padding) and of a plain transformers.Trainer script, for
# Gemma-3-270M and multilingual-e5-small with LoRA, on the QC sample. The backbones have seeded
# random weights (the kit carries no weights), so the speed figures hold and the F1 figures do not.
# Outputs go to $OUT (default /tmp/gpu-check): gpu.txt, <model>.md (the table) and <model>.json.
set -euo pipefail
KIT=.device-kit
OUT=${OUT:-/tmp/gpu-check}
ROWS=${ROWS:-20000}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$KIT"/wheels/*.whl
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda", torch.version.cuda, "bf16", torch.cuda.is_bf16_supported(), "| transformers", transformers.__version__, "| peft", peft.__version__)'
} | tee "$OUT/gpu.txt"

bench() {  # name, then train_speed.py's options
    local name=$1
    shift
    python3 bench/device/random_weights.py "$KIT/models/$name" "/tmp/models/$name"
    python3 bench/train_speed.py --sample "$KIT/qc-sample/train_QC.jsonl" --backbone "/tmp/models/$name" \
        --rows "$ROWS" --batch-size 64 "$@" | tee "$OUT/$name.md"
    cp bench/train_speed.last.json "$OUT/$name.json"
}
bench gemma-3-270m --pooling last --target-modules q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
bench multilingual-e5-small
