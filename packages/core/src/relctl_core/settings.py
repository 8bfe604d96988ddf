"""Settings from the environment: where the run database, the broker, artifacts and models live."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_VISIBILITY_TIMEOUT = 48 * 3600  # longer than any training job, so Redis never redelivers a live one
DEFAULT_HEARTBEAT_SECONDS = 30


@dataclass(frozen=True)
class Settings:
    """Resolved settings.

    RELCTL_HOME            state folder of the embedded default (default ~/.relctl)
    RELCTL_DATABASE_URL    run database (default: SQLite file in RELCTL_HOME)
    RELCTL_BROKER_URL      Celery broker (default: filesystem transport in RELCTL_HOME)
    RELCTL_ARTIFACT_ROOT   artifacts (default RELCTL_HOME/artifacts; a shared path when several hosts work)
    RELCTL_MODEL_STORE     converted models (default RELCTL_HOME/models)
    RELCTL_VISIBILITY_TIMEOUT  seconds before Redis hands an unacknowledged job to another worker
    RELCTL_HEARTBEAT_SECONDS   how often a running stage says it is alive; silent for 4 of these, it is
                               taken over by the next delivery of its message
    """

    home: Path
    database_url: str
    broker_url: str
    artifact_root: Path
    model_store: Path
    visibility_timeout: int
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_folder(self) -> Path:
        return self.home / "broker"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env.get("RELCTL_HOME") or Path.home() / ".relctl").expanduser().resolve()
    visibility_timeout = int(_positive_number(env, "RELCTL_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT, whole=True))
    heartbeat_seconds = _positive_number(env, "RELCTL_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS, whole=False)
    return Settings(
        home=home,
        database_url=env.get("RELCTL_DATABASE_URL") or f"sqlite:///{home / 'relctl.db'}",
        broker_url=env.get("RELCTL_BROKER_URL") or "filesystem://",
        artifact_root=Path(env.get("RELCTL_ARTIFACT_ROOT") or home / "artifacts").expanduser().resolve(),
        model_store=Path(env.get("RELCTL_MODEL_STORE") or home / "models").expanduser().resolve(),
        visibility_timeout=visibility_timeout,
        heartbeat_seconds=heartbeat_seconds,
    )


def _positive_number(env: Mapping[str, str], name: str, default: float, *, whole: bool) -> float:
    text = env.get(name) or str(default)
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = -1
    if value <= 0:
        from relctl_core.errors import InputError

        kind = "whole number" if whole else "number"
        raise InputError(f"must be a positive {kind} of seconds, got {text!r}", path=name)
    return value


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))
