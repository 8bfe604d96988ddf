"""`relctl ui` in a real browser (headless Chromium through Selenium) over a finished experiment: every page
opens, a user clicks from the list to the experiment to a comparison of two of its runs, the numbers
shown are the run database's (as `relctl leaderboard --json` and `relctl compare --json` print them),
and a full-page screenshot of each page is kept (also in $RELCTL_SCREENSHOTS, where set)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import RELCTL, relctl

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
RESAMPLES = "200"
WAIT = 600  # seconds a page part may take on a loaded host; a wait, never a limit on speed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def browser(skip_or_fail: Any) -> Iterator[Any]:
    """Headless Chromium driven by the system's chromedriver: nothing is downloaded."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        skip_or_fail(f"selenium is not installed ({exc}): pip install -r requirements-dev.txt")
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        skip_or_fail(f"not installed: {', '.join(missing)} (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(finished_sweep: Any, tmp_path: Path) -> Iterator[str]:
    """`relctl ui` on a free port over the finished experiment's home; its base URL."""
    env, _, _ = finished_sweep
    port = _free_port()
    log = (tmp_path / "ui.log").open("wb")
    process = subprocess.Popen(
        # Nothing built ahead, and no wait for a build: every part's first view goes through the page
        # that says it is being built and fills in by itself.
        [RELCTL, "ui", "--port", str(port), "--resamples", RESAMPLES, "--prebuild", "0", "--answer-within", "0"],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"relctl ui exited with status {process.returncode}:\n{(tmp_path / 'ui.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "relctl ui never answered"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class Screenshots:
    """Full-page screenshots under the test's folder and, where RELCTL_SCREENSHOTS names one, there too."""

    def __init__(self, driver: Any, folder: Path) -> None:
        self.driver, self.folder = driver, folder
        self.extra = Path(os.environ["RELCTL_SCREENSHOTS"]) if os.environ.get("RELCTL_SCREENSHOTS") else None
        folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def take(self, name: str) -> Path:
        import base64

        size = self.driver.execute_script(
            "return [Math.max(document.documentElement.scrollWidth, 1440), Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)];"
        )
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}},
        )
        path = self.folder / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.extra / path.name)
        self.taken.append(path)
        return path


def _wait(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.5).until(condition, message=f"waited for {what}")


def _interval_cells(driver: Any, table: str) -> dict[int, tuple[float, float | None, float | None, str]]:
    """run id -> (mean, low, high, text) of a board's interval cells as the browser has them."""
    from selenium.webdriver.common.by import By

    found = {}
    for row in driver.find_elements(By.CSS_SELECTOR, f"table#{table} tbody tr"):
        cell = row.find_element(By.CSS_SELECTOR, "td.interval")
        low, high = cell.get_attribute("data-low"), cell.get_attribute("data-high")
        found[int(row.get_attribute("data-run-id"))] = (
            float(cell.get_attribute("data-mean")), float(low) if low else None, float(high) if high else None, cell.text
        )  # fmt: skip
    return found


def _shown(mean: float, low: float | None, high: float | None) -> str:
    return f"{mean:.3f}" if low is None or high is None else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def test_the_ui_in_a_browser_shows_the_run_database(finished_sweep: Any, server: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    shots = Screenshots(browser, tmp_path / "screenshots")
    board = json.loads(relctl("leaderboard", "--json", env=env).stdout)
    experiment_id = next(r["experiment_id"] for r in board["rows"] if r["run_id"] == run_ids["r=2"])

    # 1. The experiments list, and a click through to the experiment.
    browser.get(f"{server}/")
    rows = browser.find_elements(By.CSS_SELECTOR, "table#experiments tbody tr")
    with sqlite3.connect(home / "relctl.db") as conn:
        listed = conn.execute("select id, name, status from experiments order by id desc").fetchall()
    assert [(int(r.get_attribute("data-experiment-id")), *r.text.split()[1:3]) for r in rows] == [(i, n, s) for i, n, s in listed]
    shots.take("01-experiments")
    browser.find_element(By.CSS_SELECTOR, f'table#experiments a[href="/experiments/{experiment_id}"]').click()
    _wait(browser, lambda d: d.current_url.endswith(f"/experiments/{experiment_id}"), "the experiment page")

    # 2. The experiment: its board is `relctl leaderboard --experiment`'s; the judged board and the report load after it.
    mine = json.loads(relctl("leaderboard", "--experiment", str(experiment_id), "--json", env=env).stdout)
    shown = _interval_cells(browser, "leaderboard")
    assert list(shown) == [r["run_id"] for r in mine["rows"]]
    for row in mine["rows"]:
        mean, low, high, text = shown[row["run_id"]]
        assert (mean, low, high) == (row["mean"], row["low"], row["high"])
        assert text == _shown(row["mean"], row["low"], row["high"])
    sweep = _interval_cells(browser, "sweep")
    assert {run: values[:3] for run, values in sweep.items()} == {r["run_id"]: (r["mean"], r["low"], r["high"]) for r in mine["sweep"]}
    with sqlite3.connect(home / "relctl.db") as conn:
        stages = conn.execute("select id, status from stages where experiment_id = ? order by id", (experiment_id,)).fetchall()
    stage_rows = browser.find_elements(By.CSS_SELECTOR, "table#stages-table tbody tr")
    assert [(int(r.get_attribute("data-stage-id")), r.get_attribute("data-status")) for r in stage_rows] == stages
    _wait(browser, lambda d: d.find_element(By.ID, "judged").get_attribute("data-loaded") == "true", "the judged board")
    judged = browser.find_elements(By.CSS_SELECTOR, "table#judged-table tbody tr")
    assert {int(r.get_attribute("data-run-id")) for r in judged} == {r["run_id"] for r in mine["rows"]}
    marks = browser.find_element(By.ID, "judged").text
    assert "the best run" in marks and "better baseline" in marks
    _wait(browser, lambda d: d.find_element(By.ID, "report").get_attribute("data-loaded") == "true", "the report")
    browser.switch_to.frame(browser.find_element(By.ID, "report"))
    assert "leaderboard" in browser.find_element(By.TAG_NAME, "body").text.lower()
    browser.switch_to.default_content()
    assert list((home / "ui-cache").glob(f"report-{experiment_id}-*.html")), "the built report is kept"
    shots.take("02-experiment")

    # 3. A model against the better baseline, from its link: `relctl compare --json`'s numbers. Not
    # built yet, the page answers at once that it is being built (202), then fills in by itself.
    link = browser.find_element(By.CSS_SELECTOR, f'table#leaderboard a.compare-baseline[data-a="{run_ids["r=2"]}"]')
    model, baseline = int(link.get_attribute("data-a")), int(link.get_attribute("data-b"))
    assert _status(urllib.parse.urljoin(server, link.get_attribute("href"))) == 202
    link.click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table#comparison"), "the comparison")
    expected = json.loads(
        relctl("compare", str(model), str(baseline), "--task", "qc", "--by", "language", "--json", "--resamples", RESAMPLES, env=env).stdout
    )
    for row in browser.find_elements(By.CSS_SELECTOR, "table#comparison tbody tr"):
        language = row.get_attribute("data-language")
        want = expected if language == "all" else expected["languages"][language]
        got = {key: float(row.get_attribute(f"data-{key.replace('_', '-')}")) for key in ("difference", "low", "high", "p_value")}
        assert got == {key: want[key] for key in got}, language
        assert row.find_element(By.CSS_SELECTOR, "td.verdict").text == want["verdict"]
    assert {r.get_attribute("data-language") for r in browser.find_elements(By.CSS_SELECTOR, "table#comparison tbody tr")} == {"all", *expected["languages"]}
    assert f"run {model}" in browser.find_element(By.ID, "run-a").text and f"run {baseline}" in browser.find_element(By.ID, "run-b").text
    shots.take("03-compare")

    # 4. The leaderboard of every experiment, and of one language: `relctl leaderboard --json`'s.
    browser.get(f"{server}/leaderboard")
    shown = _interval_cells(browser, "leaderboard")
    assert list(shown) == [r["run_id"] for r in board["rows"]]
    assert all(shown[r["run_id"]][:3] == (r["mean"], r["low"], r["high"]) for r in board["rows"])
    shots.take("04-leaderboard")
    languages = json.loads(relctl("leaderboard", "--by", "language", "--json", env=env).stdout)["rows"]
    language = sorted({r["language"] for r in languages})[0]
    browser.get(f"{server}/leaderboard?language={language}&sort=mean&order=desc")
    shown = _interval_cells(browser, "leaderboard")
    assert {run: values[:3] for run, values in shown.items()} == {
        r["run_id"]: (r["mean"], r["low"], r["high"]) for r in languages if r["language"] == language
    }
    shots.take("05-leaderboard-language")

    # 5. A stage's log, from the experiment page.
    browser.get(f"{server}/experiments/{experiment_id}")
    train = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table#stages-table tbody tr") if r.get_attribute("data-kind") == "train")
    stage_id = int(train.get_attribute("data-stage-id"))
    train.find_element(By.LINK_TEXT, "log").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "log"), "the stage log")
    with sqlite3.connect(home / "relctl.db") as conn:
        messages = [m for (m,) in conn.execute("select message from events where stage_id = ? order by id", (stage_id,))]
    assert messages and [line.split(" ", 2)[2] for line in browser.find_element(By.ID, "log").text.splitlines()] == messages
    shots.take("06-stage-log")

    # 6. Bad input is a page that says so, with its status.
    browser.get(f"{server}/experiments/9999")
    assert "no experiment 9999" in browser.find_element(By.ID, "error-message").text
    assert _status(f"{server}/experiments/9999") == 404
    shots.take("07-not-found")
    browser.get(f"{server}/compare?a={model}&b={model}")
    assert "compare two different runs" in browser.find_element(By.ID, "error-message").text
    assert _status(f"{server}/compare?a={model}&b={model}") == 400

    # 7. `relctl report` writes the same report as one file: opened from disk, the browser fetches
    # nothing but the file itself, and draws its figures from the plot library inside it.
    report = tmp_path / "report.html"
    written = relctl("report", "1", "--output", str(report), "--resamples", RESAMPLES, env=env)
    assert written.returncode == 0, written.stderr
    browser.get(report.as_uri())
    _wait(browser, lambda d: d.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length") > 0, "the report's figures")
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [url for url in fetched if not url.startswith(("file:", "data:", "blob:"))] == []
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("relctl report")
    shots.take("08-report")

    for path in shots.taken:
        assert path.stat().st_size > 10_000, path
