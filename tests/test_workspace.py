"""Workspace rules: services meet only through core, and sibling version ranges admit the siblings."""

from __future__ import annotations

import ast
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PACKAGES = Path(__file__).resolve().parents[1] / "packages"
MODULES = {p.name: f"relctl_{p.name}" for p in PACKAGES.iterdir() if (p / "pyproject.toml").is_file()}
# Readers that show the evaluator's statistics in process, never through a worker: the web app calls
# compare_runs, judged_board and build_report on the request's behalf (it depends on relctl-evaluator).
READS_SIBLINGS = {"ui": {"relctl_evaluator"}}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(MODULES))
def test_a_package_imports_no_sibling_but_core(package: str) -> None:
    own = MODULES[package]
    forbidden = {m for p, m in MODULES.items() if p not in (package, "core")} - READS_SIBLINGS.get(package, set())
    offenders = {
        f"{path.relative_to(PACKAGES)} imports {name}"
        for folder in ("src", "tests")
        for path in (PACKAGES / package / folder).rglob("*.py")
        for name in imported_modules(path) & forbidden
    }
    assert not offenders, f"{own} must reach its siblings only through task names: {sorted(offenders)}"


def test_core_imports_no_service() -> None:
    services = {m for p, m in MODULES.items() if p != "core"}
    offenders = [str(p) for p in (PACKAGES / "core" / "src").rglob("*.py") if imported_modules(p) & services]
    assert not offenders


@pytest.mark.parametrize("package", sorted(MODULES))
def test_sibling_ranges_admit_current_versions(package: str) -> None:
    project = tomllib.loads((PACKAGES / package / "pyproject.toml").read_text())["project"]
    siblings = {("relctl" if p == "cli" else f"relctl-{p}") for p in MODULES}
    for text in project.get("dependencies", []):
        requirement = Requirement(text)
        if requirement.name in siblings:
            assert requirement.specifier.contains(version(requirement.name)), f"{package}: {text} excludes {version(requirement.name)}"


def test_every_package_has_its_own_version_and_tests() -> None:
    for package in MODULES:
        project = tomllib.loads((PACKAGES / package / "pyproject.toml").read_text())["project"]
        assert project["version"]
        assert any((PACKAGES / package / "tests").glob("test_*.py")), f"{package} has no tests"
