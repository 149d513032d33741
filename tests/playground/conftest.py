"""Fixtures of the playground's browser tests: Chromium, as the client matrix gets it, and a gateway
whose simulator streams at its real pace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clients.harness import chromium_missing, gateway_env, require
from conftest import OPERATOR_KEY
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess, start_gateway


@pytest.fixture(scope="session")
def chromium() -> None:
    require(chromium_missing())


@pytest.fixture(scope="session")
def paced_gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """tests/conftest.py's ``gateway`` (OpenAI and Azure are the fake provider), but with the
    simulator paced as a real provider streams (``SIMULATOR_PACE=1``): its audio comes a chunk at a
    time, so the page's playback is scheduled as it would be, and speech cuts a reply mid-stream."""
    env = gateway_env(fake_upstream.url, fake_upstream.http_base, OPERATOR_KEY) | {"SIMULATOR_PACE": "1"}
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-paced") / "gateway.log")
    yield process
    process.stop()
