"""Settings from the environment: where the run database, the broker, artifacts and models live."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_VISIBILITY_TIMEOUT = 48 * 3600  # longer than any training job, so Redis never redelivers a live one
DEFAULT_HEARTBEAT_SECONDS = 30
DEFAULT_SWEEP_SECONDS = 15
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_REQUEUE_SECONDS = 60
DEFAULT_DB_RETRY_SECONDS = 600
DEFAULT_STAGE_TIME_LIMIT = 6 * 3600


@dataclass(frozen=True)
class Settings:
    """Resolved settings.

    RELCTL_HOME            state folder of the embedded default (default ~/.relctl)
    RELCTL_DATABASE_URL    run database (default: SQLite file in RELCTL_HOME)
    RELCTL_BROKER_URL      Celery broker (default: filesystem transport in RELCTL_HOME)
    RELCTL_ARTIFACT_ROOT   artifacts (default RELCTL_HOME/artifacts; a shared path when several hosts work)
    RELCTL_MODEL_STORE     converted models (default RELCTL_HOME/models)
    RELCTL_VISIBILITY_TIMEOUT  seconds before Redis hands an unacknowledged job to another worker
    RELCTL_HEARTBEAT_SECONDS   how often a running stage says it is alive; silent for 3 of these, a
                               sweeper hands it to another worker
    RELCTL_SWEEP_SECONDS       how often each worker looks for stages that lost their worker or message
    RELCTL_MAX_ATTEMPTS        attempts that may lose their worker before the stage fails
    RELCTL_REQUEUE_SECONDS     a queued stage whose message is missing this long is sent again
    RELCTL_DB_RETRY_SECONDS    how long workers and `submit --wait` wait for an unreachable run database
    RELCTL_STAGE_TIME_LIMIT    wall-clock limit of one attempt of a stage without a limit of its own
    """

    home: Path
    database_url: str
    broker_url: str
    artifact_root: Path
    model_store: Path
    visibility_timeout: int
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    sweep_seconds: float = DEFAULT_SWEEP_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    requeue_seconds: float = DEFAULT_REQUEUE_SECONDS
    db_retry_seconds: float = DEFAULT_DB_RETRY_SECONDS
    stage_time_limit: float = DEFAULT_STAGE_TIME_LIMIT

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
        sweep_seconds=_positive_number(env, "RELCTL_SWEEP_SECONDS", DEFAULT_SWEEP_SECONDS, whole=False),
        max_attempts=int(_positive_number(env, "RELCTL_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, whole=True, unit="attempts")),
        requeue_seconds=_positive_number(env, "RELCTL_REQUEUE_SECONDS", DEFAULT_REQUEUE_SECONDS, whole=False),
        db_retry_seconds=_positive_number(env, "RELCTL_DB_RETRY_SECONDS", DEFAULT_DB_RETRY_SECONDS, whole=False),
        stage_time_limit=_positive_number(env, "RELCTL_STAGE_TIME_LIMIT", DEFAULT_STAGE_TIME_LIMIT, whole=False),
    )


def _positive_number(env: Mapping[str, str], name: str, default: float, *, whole: bool, unit: str = "seconds") -> float:
    text = env.get(name) or str(default)
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = -1
    if value <= 0:
        from relctl_core.errors import InputError

        kind = "whole number" if whole else "number"
        raise InputError(f"must be a positive {kind} of {unit}, got {text!r}", path=name)
    return value


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))
