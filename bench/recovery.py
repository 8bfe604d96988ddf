"""Recovery time with default settings: seconds from a training worker's SIGKILL until its training runs
again on another worker, for a worker on the same host as a live sweeper and for one on another host.

    .venv/bin/python bench/recovery.py [--repeats 2]

Real `relctl worker` processes on the real Redis (127.0.0.1:6379, database 7) and a fresh PostgreSQL
database (127.0.0.1:5432), every RELCTL_* interval at its default (heartbeat 30 s, sweep 15 s,
visibility timeout 48 h). "Another host" is a worker in a UTS namespace of its own with its own host
name (needs root and unshare): no sweeper can see its processes, so only its heartbeat's silence tells.
The goal: under 3 heartbeat intervals plus the sweep period (105 s by default).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import RELCTL, Workers  # noqa: E402
from tests.tiny_model import build_tiny_backbone  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/7"
SPEC = """\
name: recovery
data:
  qc: {{train: {data}/qc_train.jsonl, max_rows: 240}}
split: {{strategy: category-aware, folds: 4, train_folds: [0]}}
model: {{backbone: {backbone}, lora: {{r: 4, alpha: 8}}}}
train: {{epochs: 400, lr: 1.0e-3, batch_size: 4, max_length: 32, checkpoint_steps: 50}}
baselines: false
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from relctl_core.settings import load_settings

    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELCTL_")}
    defaults = load_settings(clean)
    goal = 3 * defaults.heartbeat_seconds + defaults.sweep_seconds
    results = []
    for where in ("same host", "another host"):
        if where == "another host" and (os.geteuid() != 0 or shutil.which("unshare") is None):
            print("another host: skipped (needs root and unshare)")
            continue
        for repeat in range(args.repeats):
            seconds, redone = measure(where)
            results.append({"where": where, "repeat": repeat, "seconds": round(seconds, 1), "resumed_from": redone})
            print(json.dumps(results[-1]), flush=True)
    print(f"\nheartbeat {defaults.heartbeat_seconds:.0f} s, sweep {defaults.sweep_seconds:.0f} s, goal < {goal:.0f} s")
    print("| worker killed on | recovery (s) | resumed from checkpoint step (last step reported before the kill) | goal met |")
    print("|---|---|---|---|")
    for row in results:
        print(f"| {row['where']} | {row['seconds']} | {row['resumed_from']} | {'yes' if row['seconds'] < goal else 'no'} |")


def measure(where: str) -> tuple[float, str]:
    import psycopg
    import redis
    from sqlalchemy import select

    folder = Path(tempfile.mkdtemp(prefix="relctl-recovery-"))
    name = f"relctl_recovery_{secrets.token_hex(4)}"
    admin = POSTGRES.replace("+psycopg", "") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(REDIS).flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELCTL_")}
    env.update(
        RELCTL_HOME=str(folder / "home"), RELCTL_DATABASE_URL=f"{POSTGRES}/{name}", RELCTL_BROKER_URL=REDIS,
        RELCTL_ARTIFACT_ROOT=str(folder / "artifacts"), RELCTL_MODEL_STORE=str(folder / "models"), HF_HUB_OFFLINE="1",
    )
    data = REPO / "examples" / "demo" / "data"
    build_tiny_backbone(folder / "tiny", [data / "qc_train.jsonl"])
    (folder / "spec.yaml").write_text(SPEC.format(data=data, backbone=folder / "tiny"))
    workers = Workers(env, folder)
    doomed = None
    try:
        workers.start("cpu,translate")
        if where == "same host":
            doomed = workers.start("train.cpu")
        else:
            log = (folder / "worker-remote.log").open("wb")
            doomed = subprocess.Popen(
                ["unshare", "--uts", "sh", "-c", f'hostname other-host && exec "{RELCTL}" worker --queues train.cpu'],
                env=workers.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            Workers._wait_ready(doomed, Path(log.name))
        subprocess.run([RELCTL, "submit", str(folder / "spec.yaml")], env=env, check=True, capture_output=True)
        from relctl_core.db import Stage, session_scope
        from relctl_core.settings import load_settings

        def train() -> Stage:
            with session_scope(env["RELCTL_DATABASE_URL"]) as session:
                stage = session.scalars(select(Stage).where(Stage.kind == "train")).one()
                session.expunge(stage)
                return stage

        while not ((s := train()).status == "running" and (s.progress or {}).get("step", 0) >= 120):
            time.sleep(0.5)
        workers.start("train.cpu")  # the worker that takes over, up and idle before the kill
        # Past every sweeper's first quick pass: the kill meets them in their steady rhythm.
        time.sleep(2 * load_settings(env).sweep_seconds)
        step_at_kill = train().progress["step"]
        os.killpg(doomed.pid, signal.SIGKILL)
        killed = time.monotonic()
        doomed.wait()
        while not ((s := train()).status == "running" and s.attempts == 2):
            assert time.monotonic() - killed < 900, "no recovery within 15 minutes"
            time.sleep(0.2)
        seconds = time.monotonic() - killed
        from relctl_core.db import Event

        def resumed_at() -> int | None:
            with session_scope(env["RELCTL_DATABASE_URL"]) as session:
                for message in session.scalars(select(Event.message).where(Event.message.like("%resumed from the checkpoint at step%"))):
                    return int(message.rsplit(" ", 1)[1])
            return None

        while (step := resumed_at()) is None:
            time.sleep(0.2)
        return seconds, f"{step} ({step_at_kill})"
    finally:
        if doomed is not None and doomed.poll() is None:
            os.killpg(doomed.pid, signal.SIGKILL)
        workers.stop()
        from relctl_core import db

        db.get_engine.cache_clear()
        db._sessionmaker.cache_clear()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
