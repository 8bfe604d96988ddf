"""A model folder with the architecture and tokenizer of another and seeded random weights.

For speed figures only (tokens per second, FLOPs utilisation): a host that cannot hold or receive a
model's real weights measures the same arithmetic on random ones. The folder gets a RANDOM_WEIGHTS file,
and bench/train_speed.py then says that its F1 figures mean nothing.

    python bench/device/random_weights.py SOURCE_FOLDER TARGET_FOLDER

SOURCE_FOLDER holds config.json and the tokenizer files, any of them gzipped (name.gz); weight files
in it are ignored.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

MARKER = "RANDOM_WEIGHTS"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    if not (source / "config.json").is_file() and not (source / "config.json.gz").is_file():
        print(f"error: {source}: no config.json", file=sys.stderr)
        return 2
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if not path.is_file() or path.name.endswith(WEIGHT_SUFFIXES):
            continue
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as packed, (target / path.stem).open("wb") as plain:
                shutil.copyfileobj(packed, plain)
        else:
            shutil.copy2(path, target / path.name)

    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(target))
    architecture = getattr(transformers, (config.architectures or ["AutoModel"])[0])
    torch.manual_seed(0)
    model = (
        architecture.from_config(config)
        if architecture is transformers.AutoModel
        else architecture._from_config(config, torch_dtype=torch.float32)
    )
    model.save_pretrained(str(target))
    (target / MARKER).write_text("seeded random weights: for speed figures only\n", encoding="utf-8")
    parameters = sum(parameter.numel() for parameter in model.parameters())
    print(f"{target}: {type(model).__name__}, {parameters / 1e6:.1f}M parameters, random weights")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
