"""The playground on a locked-down gateway, as the README documents it: ``AUTH_MODE=token`` (a
``GATEWAY_SECRET`` is set) and ``ALLOWED_ORIGINS`` listing the gateway's own origin.

The page is served to anyone (it holds no secret); a session needs a gateway token, pasted into the
page's key field, and the page's origin must be allowed. In headless Chromium, on both runtimes:
without a token the gateway refuses the session and the page says what to do; with one it opens,
and a typed message gets its reply; the same page loaded from another origin
(``http://localhost:<port>`` instead of ``http://127.0.0.1:<port>``) is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from clients.harness import CHROMIUM, ClientRun, run_node
from support.gateway_process import GatewayProcess, free_port, start_gateway

from shared.tokens import mint

from .test_page import RUN_TIMEOUT_SECONDS, SCRIPT, TYPED

SECRET = "playground-test-secret-0123456789abcdef"

pytestmark = pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 90)


@pytest.fixture(scope="module")
def secured_gateway(runtime: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    port = free_port()
    env = {
        "GATEWAY_SECRET": SECRET,
        "ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
        "DEFAULT_PROVIDER": "simulator",
        "SIMULATOR_PACE": "0",
    }
    log = tmp_path_factory.mktemp(f"{runtime}-secured") / "gateway.log"
    process = start_gateway(runtime, env, log, port)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def run(chromium: None, secured_gateway: GatewayProcess) -> ClientRun:
    token = mint(SECRET, subject="playground-test", now=time.time(), ttl_seconds=600)
    port = secured_gateway.port
    simulator = {"provider": "simulator", "model": "gpt-realtime"}
    sessions = [
        {**simulator, "refused": True},
        {**simulator, "key": token, "text": TYPED, "typedReply": f"You said: {TYPED}"},
        {**simulator, "key": token, "refused": True, "page": f"http://localhost:{port}/"},
    ]
    arguments = {
        "url": f"http://127.0.0.1:{port}/",
        "executable": str(CHROMIUM),
        "wav": "/dev/null",  # no microphone in these sessions
        "sessions": json.dumps(sessions),
    }
    return run_node(str(SCRIPT), arguments, timeout=RUN_TIMEOUT_SECONDS)


def test_the_page_is_served_without_a_token(run: ClientRun) -> None:
    assert run.step("page")["status"] == 200


def test_without_a_token_the_session_is_refused_and_the_page_says_why(
    run: ClientRun, secured_gateway: GatewayProcess
) -> None:
    refused = run.step("session-0")["refused"]
    assert refused["state"] == "error"
    assert "AUTH_MODE=token" in refused["status"]
    assert "give a gateway token" in refused["status"]
    assert "request refused status=401 code=missing_token" in secured_gateway.log()


def test_with_a_token_in_the_key_field_the_session_opens(run: ClientRun) -> None:
    session = run.step("session-1")
    assert session["opened"]["state"] == "open"
    transcript = session["typed"]["transcript"]
    assert transcript[-1]["role"] == "assistant"
    assert transcript[-1]["text"].startswith(f"You said: {TYPED}.")


def test_from_an_origin_not_allowed_the_session_is_refused(
    run: ClientRun, secured_gateway: GatewayProcess
) -> None:
    refused = run.step("session-2")["refused"]
    assert refused["state"] == "error"
    assert f"it must list this page's origin, http://localhost:{secured_gateway.port}" in refused["status"]
    assert "request refused status=403 code=origin_not_allowed" in secured_gateway.log()


def test_the_token_never_shows_in_the_log(secured_gateway: GatewayProcess, run: ClientRun) -> None:
    log = secured_gateway.log()
    assert "token accepted subject='playground-test'" in log  # logged by its subject
    assert "rgw_" not in log
