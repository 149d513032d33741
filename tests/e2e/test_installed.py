"""The standalone gateway as installed: it runs on the releases installed beside it, and its own
terminal client (``realtime-gateway chat``) holds a conversation through it.

Run by ``make test`` in the suite (the project's venv) and again against installs of only
``.[standalone]`` at the oldest and the newest releases the declared ranges admit
(tests/deps/check.py, which sets ``GATEWAY_VENV``): there the first test proves the gateway under
test is that install, not the source tree.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.gateway_process import (
    GATEWAY_VENV,
    GatewayProcess,
    dependencies_under_test,
    standalone_command,
    start_gateway,
)
from support.installed import releases

pytestmark = pytest.mark.deps

LIBRARIES = ("aiohttp", "websockets", "pydantic", "pydantic-core", "uvloop", "prometheus-client")
CHAT_TIMEOUT_SECONDS = 30


@pytest.fixture(scope="module")
def simulator_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    log = tmp_path_factory.mktemp("installed") / "gateway.log"
    process = start_gateway("standalone", {"DEFAULT_PROVIDER": "simulator", "SIMULATOR_PACE": "0"}, log)
    yield process
    process.stop()


def gateway_python() -> str:
    """The interpreter the standalone gateway runs on."""
    venv = dependencies_under_test().get(GATEWAY_VENV)
    return str(Path(venv) / "bin" / "python") if venv else sys.executable


def test_the_gateway_runs_on_the_releases_installed_beside_it(simulator_gateway: GatewayProcess) -> None:
    line = re.search(r"running on (.*)", simulator_gateway.log())
    assert line is not None, simulator_gateway.log()
    logged = dict(part.rsplit(" ", 1) for part in line.group(1).split(", "))
    installed = releases(gateway_python())
    expected = {name: installed[name] for name in LIBRARIES if name in installed}
    assert {name: logged.get(name) for name in expected} == expected
    assert {"aiohttp", "websockets", "pydantic"} <= expected.keys()


def chat(gateway: GatewayProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*standalone_command(), "chat", "--url", gateway.url(), *arguments],
        capture_output=True,
        text=True,
        timeout=CHAT_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )


def test_chat_holds_a_text_conversation(simulator_gateway: GatewayProcess) -> None:
    done = chat(simulator_gateway, "-m", "hello", "-m", "and again")
    assert done.returncode == 0, done.stderr
    assert "connected: session.created" in done.stderr
    replies = [line.removeprefix("assistant> ") for line in done.stdout.splitlines()]
    assert len(replies) == 2
    assert all(reply.strip() for reply in replies), done.stdout


def test_chat_holds_a_spoken_turn(simulator_gateway: GatewayProcess) -> None:
    done = chat(simulator_gateway, "--audio", "-m", "hello")
    assert done.returncode == 0, done.stderr
    spoken = re.fullmatch(r"assistant> (.+)  \[(\d+\.\d) s of audio\]\n", done.stdout)
    assert spoken is not None, done.stdout
    assert spoken.group(1).strip()
    assert float(spoken.group(2)) > 0
