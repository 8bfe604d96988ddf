"""relctl's model store: named models converted once into ordinary Hugging Face folders.

Providers (a package's entry point in the group `relctl.model_providers`) write a model into an
empty folder; the store makes that atomic and records where it came from.
"""

from __future__ import annotations

import json
import shutil
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from relctl_core.errors import InputError
from relctl_core.settings import Settings

PROVIDERS_GROUP = "relctl.model_providers"
INFO_FILE = "relctl-model.json"


def providers() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=PROVIDERS_GROUP)}


def installed(settings: Settings) -> dict[str, dict[str, Any]]:
    """Installed models by name, with their recorded info."""
    found = {}
    if settings.model_store.is_dir():
        for folder in sorted(settings.model_store.iterdir()):
            info_file = folder / INFO_FILE
            if info_file.is_file():
                found[folder.name] = {**json.loads(info_file.read_text()), "path": str(folder)}
    return found


def install(settings: Settings, name: str, *, force: bool = False) -> tuple[dict[str, Any], bool]:
    """Provision `name` into the store; returns (info, whether it was newly installed)."""
    available = providers()
    if name not in available:
        known = ", ".join(sorted(available)) or "none (install relctl-trainer)"
        raise InputError(f"unknown model '{name}'; installable: {known}")
    target = settings.model_store / name
    if (target / INFO_FILE).is_file() and not force:
        return installed(settings)[name], False
    settings.model_store.mkdir(parents=True, exist_ok=True)
    staging = settings.model_store / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    started = time.monotonic()
    try:
        info = dict(available[name].load()(staging))
        info.update(name=name, installed_seconds=round(time.monotonic() - started, 1))
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {**info, "path": str(target)}, True


def resolve_backbone(settings: Settings, backbone: str, *, path: str = "model.backbone") -> str:
    """A model-store name, a local folder or a hub id -> what from_pretrained() takes; errors name `path`."""
    stored = settings.model_store / backbone
    if (stored / INFO_FILE).is_file():
        return str(stored)
    if backbone in providers():
        raise InputError(f"model '{backbone}' is not installed: run `relctl models install {backbone}`", path=path)
    local = Path(backbone).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise InputError(f"{local} is not a model folder (no config.json)", path=path)
        return str(local.resolve())
    return backbone
