"""The README's WebRTC recipe, run as it is written, on both runtimes.

Its two code blocks are read from the README: the backend's ``gateway_token`` runs here against a
gateway that takes only tokens; the page's ``startCall`` runs in headless Chromium (a fake microphone)
on a page whose origin ``ALLOWED_ORIGINS`` lists, so every ``fetch`` goes through the gateway's CORS
answers. It mints an ephemeral key through the gateway (the fake OpenAI sees the operator's key) and
posts the browser's own SDP offer with that key to the gateway's ``/v1/realtime/calls`` (the fake sees
the ``ek_`` key); the browser takes the answer as its remote description and reads the call id from
``Location``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients.harness import CHROMIUM, chromium_missing, run_node
from conftest import OPERATOR_KEY
from support.fake_openai_http import FakeOpenAIHttp
from support.gateway_process import GatewayProcess, free_port, start_gateway

README = Path(__file__).resolve().parents[2] / "README.md"
GATEWAY_SECRET = "e2e-recipe-gateway-secret-0123456789abcdef"
GATEWAY_ADMIN_KEY = "e2e-recipe-admin-key-5b1e"


def recipe_block(name: str) -> str:
    """The fenced code block that follows ``<!-- recipe:<name> -->`` in the README."""
    found = re.search(rf"<!-- recipe:{name} -->\n```\w+\n(.*?)```", README.read_text(), re.DOTALL)
    assert found is not None, f"the README has no recipe:{name} block"
    return found.group(1)


def identity(sdp: str) -> list[str]:
    """An SDP's ICE credentials and DTLS fingerprint: who made it."""
    return sorted(line for line in sdp.splitlines() if line.startswith(("a=ice-ufrag:", "a=fingerprint:")))


@pytest.fixture(scope="module")
def page_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIHttp]:
    fake = FakeOpenAIHttp((OPERATOR_KEY,)).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def recipe_gateway(
    runtime: str, fake_openai: FakeOpenAIHttp, page_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    env = {
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "GATEWAY_ADMIN_KEY": GATEWAY_ADMIN_KEY,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "OPENAI_BASE_URL": fake_openai.base,
        "ALLOWED_ORIGINS": f"http://127.0.0.1:{page_port}",
    }
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-recipe") / "gateway.log")
    yield process
    process.stop()


def test_the_readmes_webrtc_recipe_works_through_the_gateway(
    recipe_gateway: GatewayProcess,
    fake_openai: FakeOpenAIHttp,
    page_port: int,
    tmp_path: Path,
) -> None:
    missing = chromium_missing()
    if missing:
        pytest.skip(missing)
    gateway = f"http://127.0.0.1:{recipe_gateway.port}"
    backend: dict[str, object] = {"GATEWAY": gateway, "GATEWAY_ADMIN_KEY": GATEWAY_ADMIN_KEY}
    exec(recipe_block("backend"), backend)  # the README's backend, as written
    token = backend["gateway_token"]("recipe-user")  # type: ignore[operator]
    assert isinstance(token, str)
    assert token.startswith("rgw_")
    recipe = tmp_path / "recipe.js"
    recipe.write_text(recipe_block("browser"))
    mark = fake_openai.mark()
    run = run_node(
        "webrtc_recipe.mjs",
        {
            "gateway": gateway,
            "token": token,
            "calls": f"{gateway}/v1/realtime/calls",
            "recipe": str(recipe),
            "page-port": str(page_port),
            "executable": str(CHROMIUM),
        },
    )
    call = run.step("call")
    assert "error" not in call, call
    assert "pageerror" not in run.steps, run.steps["pageerror"]
    minted, offered = fake_openai.requests_after(mark)
    assert minted.path == "/v1/realtime/client_secrets"
    assert minted.key == OPERATOR_KEY
    asked = minted.json()
    assert asked["session"] == {"type": "realtime", "model": "gpt-realtime"}
    # The token lives 300 s, less than OpenAI's default 600: the secret was capped at what is left.
    assert asked["expires_after"]["anchor"] == "created_at"
    assert 290 <= asked["expires_after"]["seconds"] <= 300
    assert offered.path == "/v1/realtime/calls"
    assert offered.key is not None
    assert offered.key.startswith("ek_")
    assert offered.key in fake_openai.minted
    assert offered.headers["content-type"] == "application/sdp"
    # The browser's own offer (its description has since gathered ICE candidates: same identity).
    assert identity(call["offer"])
    assert identity(offered.body.decode()) == identity(call["offer"])
    assert "m=audio" in call["offer"]
    assert "m=application" in call["offer"]
    assert call["signaling_state"] == "stable"  # the answer was taken
    assert call["call_id"].startswith("rtc_")
    assert call["channel"] == "oai-events"
    assert fake_openai.calls[call["call_id"]].state == "active"
    log = recipe_gateway.log()
    for secret in (token, OPERATOR_KEY, offered.key, GATEWAY_ADMIN_KEY):
        assert secret not in log
