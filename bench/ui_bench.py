"""Benchmark: `relctl ui` pages on a run database of 10,000 experiments (PostgreSQL), and the parts of an
experiment page that resample a real experiment's rows.

The database is seeded as bench/leaderboard_bench.py seeds it (about 6 runs and 2,200 metric rows per
experiment: 23 million rows at 10,000), or given with --url. The app runs as `relctl ui` in a process of
its own; each page is fetched over one keep-alive HTTP connection, once to warm it, then --repeats
times. Beside each page, in the same run, its floor: the database reads the page is made of (the same
relctl functions, in this process, on a connection of its own), so that the ratio is what the web
layer and the rendering add.

With --home DIR (a RELCTL_HOME holding a finished experiment, e.g. one `make demo` made), the pages
that read a run's out-of-fold rows are timed too: the judged board, the report and the compare page,
each by its first answer (202 "being built" when the build takes longer than the app's wait), the time
until the part is shown, and its later views.

    .venv/bin/python bench/ui_bench.py                                   # seed 10,000 experiments, time, drop
    .venv/bin/python bench/ui_bench.py --url postgresql+psycopg://postgres@127.0.0.1:5432/relctl_bench_10000_xxxx
    .venv/bin/python bench/ui_bench.py --url ... --home .relctl          # also the demo experiment's slow parts
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
RELCTL = str(Path(sys.executable).with_name("relctl"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`relctl ui` on a free port, with the given environment, until stopped."""

    def __init__(self, env: dict[str, str], *, prebuild: int = 0) -> None:
        self.port = free_port()
        argv = [RELCTL, "ui", "--port", str(self.port), "--prebuild", str(prebuild)]
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"relctl ui exited: {self.process.stderr.read() if self.process.stderr else ''}")
            try:
                status, _ = self.get("/health")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("relctl ui did not answer within 120 s")

    def get(self, path: str, connection: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        own = connection is None
        connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            if own:
                connection.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def timed(work: Callable[[], Any], repeats: int) -> list[float]:
    work()  # warm: imports, compiled statements, the connection pool
    found = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        found.append(time.perf_counter() - started)
    return found


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def database_pages(server: Server, url: str, repeats: int) -> list[dict[str, Any]]:
    """The pages that read the run database alone, each beside its reads done in this process."""
    from relctl_core.engine import get_engine
    from relctl_core.leaderboard import leaderboard, scored_metrics
    from relctl_core.tables import DONE, experiments, stages
    from relctl_ui import queries
    from sqlalchemy import func, select

    engine = get_engine(url)
    with engine.connect() as connection:
        middle = connection.scalar(select(func.max(experiments.c.id)).where(experiments.c.status == DONE, experiments.c.id <= 5000))
        stage = connection.scalar(select(func.min(stages.c.id)).where(stages.c.experiment_id == middle))

    def reads(work: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with engine.connect() as connection:
                return work(connection)

        return run

    pages: list[tuple[str, str, Callable[[], Any]]] = [
        ("experiments, newest 50", "/", reads(lambda c: queries.experiment_page(c, name=None, status=None, page=1))),
        ("experiments, name filter", "/?name=sweep", reads(lambda c: queries.experiment_page(c, name="sweep", status=None, page=1))),
        ("experiments, status filter", "/?status=failed", reads(lambda c: queries.experiment_page(c, name=None, status="failed", page=1))),
        ("experiments, page 100", "/?page=100", reads(lambda c: queries.experiment_page(c, name=None, status=None, page=100))),
        ("leaderboard", "/leaderboard", reads(lambda c: (scored_metrics(c), leaderboard(c), queries.scored_languages(c, "f1@oof")))),
        ("leaderboard, QI by ROC-AUC", "/leaderboard?task=qi&metric=roc_auc", reads(lambda c: (scored_metrics(c), leaderboard(c, task="qi", metric="roc_auc"), queries.scored_languages(c, "roc_auc")))),
        ("leaderboard, language de", "/leaderboard?language=de", reads(lambda c: (scored_metrics(c), leaderboard(c, by_language=True), queries.scored_languages(c, "f1@oof")))),
        ("experiment page", f"/experiments/{middle}", reads(lambda c: (queries.stages_of(c, middle), leaderboard(c, experiment_id=middle, limit=None), scored_metrics(c)))),
        ("experiment stages (refresh)", f"/experiments/{middle}/stages", reads(lambda c: queries.stages_of(c, middle))),
        ("stage log", f"/experiments/{middle}/stages/{stage}/log", reads(lambda c: queries.stage_events(c, stage))),
    ]  # fmt: skip
    results = []
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    for name, path, floor in pages:
        statuses: list[int] = []

        def fetch(path: str = path, statuses: list[int] = statuses) -> None:
            status, _ = server.get(path, connection)
            statuses.append(status)

        page_times = timed(fetch, repeats)
        floor_times = timed(floor, repeats)
        if set(statuses) != {200}:
            raise SystemExit(f"{path} answered {sorted(set(statuses))}")
        results.append(
            {"page": name, "path": path, "p50_ms": 1000 * statistics.median(page_times), "p95_ms": 1000 * p(page_times, 0.95),
             "floor_p50_ms": 1000 * statistics.median(floor_times), "repeats": repeats}
        )  # fmt: skip
        print(f"{name}: {results[-1]['p50_ms']:.0f} ms (floor {results[-1]['floor_p50_ms']:.0f} ms)", file=sys.stderr)
    connection.close()
    return results


def resampling_pages(home: Path, repeats: int) -> list[dict[str, Any]]:
    """The parts of an experiment page that resample its runs' rows: first view, then cached."""
    import sqlite3

    env = {**os.environ, "RELCTL_HOME": str(home)}
    env.pop("RELCTL_DATABASE_URL", None)
    with sqlite3.connect(home / "relctl.db") as db:
        experiment = db.execute("select max(id) from experiments where status = 'done'").fetchone()[0]
        model, baseline = db.execute(
            "select (select min(id) from runs where experiment_id = ? and kind = 'model' and status = 'done'),"
            " (select min(id) from runs where experiment_id = ? and name = 'baseline:all-relevant')",
            (experiment, experiment),
        ).fetchone()
    results = []
    # First without building ahead (each part built by its first view), then as `relctl ui` runs by
    # default: the experiments that finished last built by the app's thread, the first view once built.
    for prebuild in (0, 10):
        with tempfile.TemporaryDirectory() as copy:
            # A home of its own, so that the first view is a cold one and the given home's cache is left
            # as it is: a copy of the run database, the artifacts linked.
            with sqlite3.connect(home / "relctl.db") as source, sqlite3.connect(Path(copy) / "relctl.db") as target:
                source.backup(target)
            (Path(copy) / "artifacts").symlink_to(home / "artifacts")
            env["RELCTL_HOME"] = copy
            started = time.perf_counter()
            server = Server(env, prebuild=prebuild)
            try:
                ahead = None
                if prebuild:
                    deadline = time.monotonic() + 900  # a bound, not a goal
                    while not list((Path(copy) / "ui-cache").glob(f"report-{experiment}-*.html")) and time.monotonic() < deadline:
                        time.sleep(0.2)
                    ahead = time.perf_counter() - started
                    print(f"built ahead {ahead:.1f} s after the start", file=sys.stderr)
                for name, path in (
                    ("judged board", f"/experiments/{experiment}/judged"),
                    ("report", f"/experiments/{experiment}/report"),
                    ("compare", f"/compare?a={model}&b={baseline}"),
                ):
                    started = time.perf_counter()
                    status, _ = server.get(path)
                    first = time.perf_counter() - started
                    # A part not built within the app's wait answers 202 at once; the page asks again
                    # every second until it is there. Timed here: until the part is built (asked
                    # every 50 ms, so the figure is the build's, not the page's polling period).
                    shown, final = first, status
                    while final == 202:
                        time.sleep(0.05)
                        final, _ = server.get(path)
                        shown = time.perf_counter() - started
                    again = []
                    for _ in range(repeats):
                        started = time.perf_counter()
                        server.get(path)
                        again.append(time.perf_counter() - started)
                    results.append({"page": name, "path": path, "status": status, "final_status": final, "prebuild": prebuild, "built_ahead_s": ahead,
                                    "first_ms": 1000 * first, "shown_ms": 1000 * shown, "again_p50_ms": 1000 * statistics.median(again)})  # fmt: skip
                    print(f"{name} (--prebuild {prebuild}): first answer {1000 * first:.0f} ms ({status}), shown after {1000 * shown:.0f} ms, again {1000 * statistics.median(again):.0f} ms", file=sys.stderr)
            finally:
                server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=10000)
    parser.add_argument("--url", default=None, help="an already seeded database (bench/leaderboard_bench.py --keep)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--home", type=Path, default=None, help="a RELCTL_HOME with a finished experiment, for the resampling parts")
    args = parser.parse_args()

    import leaderboard_bench

    url = args.url or leaderboard_bench.create_database(args.experiments)
    results: dict[str, Any] = {}
    try:
        if not args.url:
            started = time.monotonic()
            leaderboard_bench.seed(url, args.experiments)
            print(f"seeded {args.experiments:,} experiments in {time.monotonic() - started:.0f} s", file=sys.stderr)
        subprocess.run([RELCTL, "db", "upgrade"], env={**os.environ, "RELCTL_DATABASE_URL": url}, check=True, stdout=subprocess.DEVNULL)
        with tempfile.TemporaryDirectory() as home:
            server = Server({**os.environ, "RELCTL_DATABASE_URL": url, "RELCTL_HOME": home})
            try:
                results["database_pages"] = database_pages(server, url, args.repeats)
            finally:
                server.stop()
        results["load_average"] = round(os.getloadavg()[0], 1)
        if args.home is not None:
            results["resampling_pages"] = resampling_pages(args.home.resolve(), max(3, args.repeats // 3))
    finally:
        if args.keep or args.url:
            print(f"kept {url}", file=sys.stderr)
        else:
            leaderboard_bench.drop_database(url)
    print("| page | path | p50 | p95 | floor p50 (its reads) | ratio |\n|---|---|---:|---:|---:|---:|")
    for r in results["database_pages"]:
        print(f"| {r['page']} | `{r['path']}` | {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | {r['floor_p50_ms']:.0f} ms | {r['p50_ms'] / r['floor_p50_ms']:.2f}x |")
    for r in results.get("resampling_pages", []):
        print(f"| {r['page']} (--prebuild {r['prebuild']}) | `{r['path']}` | first answer {r['first_ms']:.0f} ms ({r['status']}) | again {r['again_p50_ms']:.0f} ms | shown after {r['shown_ms']:.0f} ms | - |")
    (BENCH / "ui_bench.last.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
