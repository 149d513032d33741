"""The pytest plugin that records the client matrix to ``build/compat.json``.

Registered by ``tests/clients/conftest.py`` and, for ``tests/e2e/test_openai_sdk.py`` (the Python
``openai`` SDK's cells), by that module's ``pytest_plugins = ["clients.compat_plugin"]``; pytest
registers it once, under the name ``clients.compat_plugin``, whichever comes first.

A test belongs to a cell when it carries ``@pytest.mark.compat(client=..., protocol=...,
runtime=...)`` (on the test, its module, or a parameter: ``pytest.param(..., marks=...)``);
whatever the marker leaves out is read from the test's parameters (``client``, ``protocol``, and
``runtime``, which tests/conftest.py's ``gateway`` is parametrised by). A test also marked
``@pytest.mark.simulator`` (the same turns against ``provider=simulator``: a separate check) is left
out of its cell. At the end of the session every cell's outcome goes to ``build/compat.json``,
which ``compat_table.py`` renders into the README: cells not run in this session are written as
``not run``, so the file and the table come from one full run. A run against other installs of the
gateway's dependencies (``tests/deps/check.py``) records nothing: the matrix is the project's own.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from clients import compat_table
from support.gateway_process import dependencies_under_test

NAME = "clients.compat_plugin"
REPORTS = pytest.StashKey[dict[tuple[str, str, str], list[compat_table.Report]]]()
STARTED = pytest.StashKey[float]()


def register(config: pytest.Config) -> None:
    """Register this module as a plugin of ``config`` unless it already is."""
    if not config.pluginmanager.has_plugin(NAME):
        config.pluginmanager.register(sys.modules[__name__], NAME)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compat(client, protocol, runtime): the client-matrix cell a test belongs to"
    )
    config.addinivalue_line(
        "markers", "simulator: a client-matrix check against provider=simulator, kept out of its cell"
    )
    config.stash[REPORTS] = {}
    config.stash[STARTED] = time.monotonic()


def cell_of(item: pytest.Item) -> tuple[str, str, str] | None:
    """The cell ``item`` belongs to, or None."""
    markers = list(item.iter_markers("compat"))
    if not markers or item.get_closest_marker("simulator") is not None:
        return None
    kwargs: dict[str, object] = {}
    for marker in reversed(markers):  # the closest marker's values win
        kwargs.update({name: value for name, value in marker.kwargs.items() if value})
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    cell = tuple(kwargs.get(name) or params.get(name) for name in ("client", "protocol", "runtime"))
    if not all(isinstance(part, str) for part in cell):
        raise pytest.UsageError(f"{item.nodeid}: compat cell incomplete {cell}")
    return cell  # type: ignore[return-value]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    cell = cell_of(item)
    if cell is not None:
        reason = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        entry = compat_table.Report(report.nodeid, report.when, report.outcome, reason)
        item.config.stash[REPORTS].setdefault(cell, []).append(entry)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    reports = session.config.stash.get(REPORTS, {})
    if not reports or dependencies_under_test():
        return
    seconds = time.monotonic() - session.config.stash[STARTED]
    results = compat_table.record(reports, seconds)
    path: Path = compat_table.RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
