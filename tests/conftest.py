"""Fixtures for cross-package tests: an isolated relctl home, the real Redis and PostgreSQL, real workers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import Workers

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("RELCTL_TEST_REDIS", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("RELCTL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")


def reset_caches() -> None:
    from relctl_core import celery_app, db

    celery_app.reset_app()
    db.get_engine.cache_clear()
    db._sessionmaker.cache_clear()


@pytest.fixture
def relctl_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An empty embedded setup (SQLite, filesystem broker) in tmp_path; the real model store is shared."""
    home = tmp_path / "home"
    env = {"RELCTL_HOME": str(home), "RELCTL_MODEL_STORE": str(model_store())}
    for key in ("RELCTL_DATABASE_URL", "RELCTL_BROKER_URL", "RELCTL_ARTIFACT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_caches()
    yield env
    reset_caches()


def model_store() -> Path:
    return Path(os.environ.get("RELCTL_MODEL_STORE") or REPO / ".relctl" / "models")


@pytest.fixture(scope="session")
def redis_url(skip_or_fail) -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_server(skip_or_fail) -> str:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL.replace("+psycopg", "") + "/postgres", connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        skip_or_fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


@contextmanager
def fresh_database(server: str, prefix: str = "relctl_test") -> Iterator[str]:
    """A new PostgreSQL database on ``server`` for one test (its URL), dropped afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = server.replace("+psycopg", "") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def relctl_env_for(tmp_path: Path, database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The settings of a distributed setup: shared database, broker, artifact folder and model store."""
    return {
        "RELCTL_HOME": str(tmp_path / "home"),
        "RELCTL_DATABASE_URL": database_url,
        "RELCTL_BROKER_URL": broker_url,
        "RELCTL_ARTIFACT_ROOT": str(tmp_path / "shared-artifacts"),
        "RELCTL_MODEL_STORE": str(model_store()),
        **extra,
    }


@pytest.fixture
def distributed_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str, postgres_server: str) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database and Redis database number for one test, dropped afterwards."""
    import redis

    broker = f"{redis_url}/{10 + secrets.randbelow(5)}"
    redis.Redis.from_url(broker).flushdb()
    with fresh_database(postgres_server) as database:
        env = relctl_env_for(tmp_path, database, broker)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_caches()
        yield env
        reset_caches()
    redis.Redis.from_url(broker).flushdb()


@pytest.fixture
def workers(distributed_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(distributed_env, tmp_path)
    yield pool
    pool.stop()


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, int], Path]:
    """One finished experiment (a sweep of two runs beside the baselines) in a fresh embedded home,
    shared by the modules that read finished runs (tests/finished.py)."""
    from tests.finished import run_sweep

    return run_sweep(tmp_path_factory.mktemp("finished"))
