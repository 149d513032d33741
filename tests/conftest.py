"""Fixtures shared by the end-to-end tests: a fake provider and gateway processes in front of it.

Every gateway fixture is session-scoped and per runtime, and starts its process only when a test
asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess, refused_port, runtime_missing, start_gateway

# The operator key configured on the test gateways; tests check it never shows in logs or events.
OPERATOR_KEY = "sk-operator-secret-0123456789"
RUNTIMES = ["standalone", "worker"]
# The Azure API version that sends the gateway to Azure's preview path (a beta deployment).
AZURE_PREVIEW_API_VERSION = "2024-10-01-preview"


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    missing = runtime_missing(request.param)
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{request.param} runtime unavailable in CI: {missing}")
        pytest.skip(missing)
    return request.param


def _gateway(
    runtime: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[GatewayProcess]:
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-{name}") / "gateway.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway as deployed today: OpenAI and Azure are the fake's GA endpoints (OpenAI's GPT-Live and
    translation the fake's too); and the simulator."""
    env = {
        "OPENAI_BASE_URL": fake_upstream.openai_base,
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "AZURE_OPENAI_ENDPOINT": fake_upstream.http_base,
        "SIMULATOR_PACE": "0",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "2",
    }
    yield from _gateway(runtime, env, tmp_path_factory, "ga")


@pytest.fixture(scope="session")
def beta_gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway whose providers speak beta: OpenAI (``OPENAI_PROTOCOL=beta``) is the fake's beta
    endpoint, Azure its preview path (``AZURE_OPENAI_API_VERSION`` set, so beta by default)."""
    env = {
        "OPENAI_REALTIME_URL": fake_upstream.beta_url,
        "OPENAI_PROTOCOL": "beta",
        "OPENAI_API_KEY": OPERATOR_KEY,
        "AZURE_OPENAI_ENDPOINT": fake_upstream.http_base,
        "AZURE_OPENAI_API_VERSION": AZURE_PREVIEW_API_VERSION,
        "SIMULATOR_PACE": "0",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "2",
    }
    yield from _gateway(runtime, env, tmp_path_factory, "beta")


@pytest.fixture(scope="session")
def unreachable_gateway(runtime: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose OpenAI endpoints are a closed port on loopback, and no operator key."""
    port = refused_port()
    env = {
        "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{port}/v1/realtime",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
    }
    yield from _gateway(runtime, env, tmp_path_factory, "unreachable")
