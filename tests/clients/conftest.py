"""Fixtures of the client matrix, and the plugin that records it to ``build/compat.json``.

A client's tests carry ``@pytest.mark.compat(client=..., protocol=..., runtime=...)``; whatever the
marker leaves out is read from the test's parameters (``client``, ``protocol``, and ``runtime``,
which tests/conftest.py's ``gateway`` is parametrised by). At the end of the session every cell's
outcome goes to ``build/compat.json``, which ``compat_table.py`` renders into the README.

What a client needs (Node packages, Chromium, openai-agents) is checked by a fixture that skips
with the reason, or fails under ``CI`` (CI installs all of it: ``.ci/run``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients import compat_table
from clients.harness import (
    Certificates,
    TlsGateway,
    agents_missing,
    certificate_tools_missing,
    chromium_missing,
    gateway_env,
    make_certificates,
    node_missing,
    require,
    start_tls_gateway,
)
from conftest import OPERATOR_KEY
from support.fake_upstream import FakeUpstream

REPORTS = pytest.StashKey[dict[tuple[str, str, str], list[compat_table.Report]]]()
STARTED = pytest.StashKey[float]()


# -- requirements ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def openai_agents() -> None:
    require(agents_missing())


@pytest.fixture(scope="session")
def node_sdks() -> None:
    require(node_missing(["openai", "@openai/agents-realtime", "ws"]))


@pytest.fixture(scope="session")
def chromium() -> None:
    require(chromium_missing())


# -- a standalone gateway serving wss:// -------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    require(certificate_tools_missing())
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_gateway(
    fake_upstream: FakeUpstream, tls_certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsGateway]:
    """``gateway``'s settings (OpenAI is the fake provider) on the standalone server over TLS."""
    env = gateway_env(fake_upstream.url, fake_upstream.http_base, OPERATOR_KEY)
    process = start_tls_gateway(env, tls_certificates, tmp_path_factory.mktemp("tls-gateway") / "gateway.log")
    yield process
    process.stop()


# -- the compatibility record ------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compat(client, protocol, runtime): the client-matrix cell a test belongs to"
    )
    config.stash[REPORTS] = {}
    config.stash[STARTED] = time.monotonic()


def _cell_of(item: pytest.Item) -> tuple[str, str, str] | None:
    marker = item.get_closest_marker("compat")
    if marker is None:
        return None
    params = getattr(item, "callspec", None)
    params = params.params if params is not None else {}
    cell = tuple(marker.kwargs.get(name) or params.get(name) for name in ("client", "protocol", "runtime"))
    if not all(isinstance(part, str) for part in cell):
        raise pytest.UsageError(f"{item.nodeid}: compat cell incomplete {cell}")
    return cell  # type: ignore[return-value]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    cell = _cell_of(item)
    if cell is not None:
        reason = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        entry = compat_table.Report(report.nodeid, report.when, report.outcome, reason)
        item.config.stash[REPORTS].setdefault(cell, []).append(entry)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    reports = session.config.stash.get(REPORTS, {})
    if not reports:
        return
    seconds = time.monotonic() - session.config.stash[STARTED]
    results = compat_table.record(reports, seconds)
    path: Path = compat_table.RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
