"""Writing the report page: bad --output paths are refused before any work, and a failed write leaves
neither a half page nor a temporary file."""

from __future__ import annotations

from pathlib import Path

import pytest
from relctl_core.errors import InputError

from relctl_evaluator import report_html
from relctl_evaluator.report_html import check_writable, write_page


def test_bad_output_paths_are_bad_input(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_writable(tmp_path / "folder")
    with pytest.raises(InputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "report.html")
    check_writable(tmp_path / "report.html")


def test_a_page_replaces_the_old_one_whole(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")
    out.chmod(0o640)
    write_page(out, "<p>new</p>")
    assert out.read_text() == "<p>new</p>" and (out.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_failed_write_leaves_the_old_page_and_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")

    def full_disk(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_html.os, "replace", full_disk)
    with pytest.raises(InputError, match="No space left on device"):
        write_page(out, "<p>new</p>")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
