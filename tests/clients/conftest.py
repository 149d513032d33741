"""Fixtures of the client matrix; and the plugin that records it to ``build/compat.json``
(``compat_plugin.py``: a client's tests carry ``@pytest.mark.compat(client=..., protocol=...,
runtime=...)``, its checks against the simulator also ``@pytest.mark.simulator``).

What a client needs (Node packages, Chromium, openai-agents) is checked by a fixture that skips
with the reason, or fails under ``CI`` (CI installs all of it: ``.ci/run``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clients import compat_plugin
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
    compat_plugin.register(config)
