"""The dependency ranges pyproject.toml declares: each has a lower bound for the dependency check to
install (tests/deps/check.py), the releases installed here lie inside them, and
docs/dependencies.md lists every one as declared."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from deps import check as deps_check
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from worker_host import vendor

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "dependencies.md"
README = ROOT / "README.md"

STANDALONE = deps_check.declared({}, deps_check.EXTRA)
WORKER = deps_check.declared(deps_check.PYODIDE_ENVIRONMENT, None)


def test_the_standalone_server_declares_its_libraries() -> None:
    assert {requirement.name for requirement in STANDALONE} == {
        "pydantic",
        "aiohttp",
        "websockets",
        "uvloop",
        "redis",
        "prometheus-client",
    }


def test_the_worker_declares_only_pydantic_and_its_pyodide_range() -> None:
    [pydantic] = WORKER
    assert pydantic.name == "pydantic"
    assert not pydantic.specifier.contains("2.13.5")  # no pydantic-core for Pyodide before 2.14
    assert pydantic.specifier.contains("2.14.0")


@pytest.mark.parametrize("requirements", [STANDALONE, WORKER], ids=["standalone", "worker"])
def test_every_range_has_the_lower_bound_the_check_installs(requirements: list[Requirement]) -> None:
    pins = deps_check.lower_bounds(requirements)
    for requirement, pin in zip(requirements, pins, strict=True):
        name, version = pin.split("==")
        assert name == requirement.name
        assert requirement.specifier.contains(version)
        assert f">={version}" in {str(spec) for spec in requirement.specifier}


def test_a_range_without_a_lower_bound_is_refused() -> None:
    with pytest.raises(SystemExit, match="needs one lower bound"):
        deps_check.lower_bounds([Requirement("websockets<18")])


@pytest.mark.parametrize("requirement", STANDALONE, ids=str)
def test_the_release_installed_here_is_inside_the_declared_range(requirement: Requirement) -> None:
    assert requirement.specifier.contains(importlib.metadata.version(requirement.name))


def test_the_vendored_worker_packages_are_inside_the_pyodide_range() -> None:
    pinned = {name: version for name, version, _ in vendor.PINS}
    for requirement in WORKER:
        assert requirement.specifier.contains(pinned[requirement.name]), requirement


def documented_ranges() -> dict[tuple[str, str], tuple[SpecifierSet, Version]]:
    """docs/dependencies.md's table: (package, for) -> (declared range, lowest tested)."""
    text = DOC.read_text()
    table = text[text.index("<!-- ranges:start -->") : text.index("<!-- ranges:end -->")]
    rows = {}
    for line in table.splitlines()[3:]:
        package, where, declared, lowest = (cell.strip(" `") for cell in line.split("|")[1:5])
        rows[package, where] = (SpecifierSet(declared), Version(lowest))
    return rows


def test_the_docs_list_every_declared_range_and_its_lowest_release() -> None:
    expected = {}
    for where, requirements in (("standalone", STANDALONE), ("Worker (Pyodide)", WORKER)):
        for requirement, pin in zip(requirements, deps_check.lower_bounds(requirements), strict=True):
            expected[requirement.name, where] = (requirement.specifier, Version(pin.split("==")[1]))
    assert documented_ranges() == expected


def test_the_docs_name_the_check_s_ends() -> None:
    text = DOC.read_text()
    for end in deps_check.ENDS:
        assert re.search(rf"\| `{end}` \|", text)


def test_the_readme_summary_says_what_pyproject_declares() -> None:
    text = README.read_text()
    table = text[text.index("<!-- ranges-summary:start -->") : text.index("<!-- ranges-summary:end -->")]
    rows = {}
    for line in table.splitlines()[3:]:
        package, declared, tested = (cell.strip() for cell in line.split("|")[1:4])
        ranges = [SpecifierSet(spec) for spec in re.findall(r"`([^`]*[<>=][^`]*)`", declared)]
        lowest = [Version(version) for version in re.findall(r"\d+(?:\.\d+)+", tested)]
        rows[package.strip("`")] = (ranges, lowest)
    expected: dict[str, tuple[list[SpecifierSet], list[Version]]] = {}
    for requirements in (STANDALONE, WORKER):
        for requirement, pin in zip(requirements, deps_check.lower_bounds(requirements), strict=True):
            ranges, lowest = expected.setdefault(requirement.name, ([], []))
            ranges.append(requirement.specifier)
            lowest.append(Version(pin.split("==")[1]))
    assert rows == expected
