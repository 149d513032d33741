"""End-to-end test of the local Python Worker host (tests/worker_host/host.mjs).

Starts the host with the toy Worker ``echo_entry.py`` and talks to it over real
sockets: plain HTTP, WebSocket echo, subprotocols, close codes both ways, and
the outbound relay (``fetch`` with ``Upgrade: websocket``) to a ``websockets``
server started here on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

REPO = Path(__file__).resolve().parents[2]
HOST_JS = REPO / "tests" / "worker_host" / "host.mjs"
ECHO_ENTRY = REPO / "tests" / "worker_host" / "echo_entry.py"

# The first start on a machine builds the host's caches (a few seconds, more on
# a loaded machine); later starts take about a second.
STARTUP_TIMEOUT = 240
pytestmark = pytest.mark.timeout(STARTUP_TIMEOUT + 60)

if not (REPO / "node_modules" / "pyodide").is_dir():
    pytest.skip("node_modules/pyodide is absent (run: npm install)", allow_module_level=True)
if not (REPO / "python_modules" / "workers").is_dir():
    pytest.skip(
        "python_modules is absent (run: python tests/worker_host/vendor.py)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """The host serving echo_entry.py; yields 'host:port'."""
    yield from run_host(tmp_path_factory.mktemp("worker_host"), ["--var", "GREETING=hello"])


def run_host(log_dir: Path, options: list[str]):
    """Start the host with echo_entry.py and ``options``; yield 'host:port' until it is stopped."""
    out, err = log_dir / "stdout.log", log_dir / "stderr.log"
    env = dict(os.environ, WORKER_HOST_TEST_VAR="from-environment")
    cmd = ["node", str(HOST_JS), "--entry", str(ECHO_ENTRY), "--port", "0", *options]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (match := re.search(r"listening on http://(\S+)", out.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"host did not start (exit {proc.poll()}):\n{err.read_text()}")
            time.sleep(0.05)
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_get(host: str, path: str) -> str:
    with urllib.request.urlopen(f"http://{host}{path}", timeout=10) as resp:
        return resp.read().decode()


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), 10)


def test_http_request_and_env(host):
    assert http_get(host, "/") == "echo worker\n"
    assert http_get(host, "/env?name=GREETING") == "hello"  # --var
    assert http_get(host, "/env?name=WORKER_HOST_TEST_VAR") == "from-environment"


async def test_text_and_binary_round_trip(host):
    async with connect(f"ws://{host}/echo") as ws:
        await ws.send("hello, worker")
        assert await recv(ws) == "hello, worker"
        payload = bytes(range(256)) * 3
        await ws.send(payload)
        echoed = await recv(ws)
        assert isinstance(echoed, bytes)
        assert echoed == payload


async def test_frames_sent_before_the_handshake_are_delivered(host):
    async with connect(f"ws://{host}/echo?greet") as ws:
        assert await recv(ws) == "welcome"
        await ws.send("after")
        assert await recv(ws) == "after"


async def test_subprotocol_chosen_by_worker(host):
    async with connect(f"ws://{host}/echo", subprotocols=["realtime", "other"]) as ws:
        assert ws.subprotocol == "realtime"
        assert ws.response.headers["Sec-WebSocket-Protocol"] == "realtime"
    async with connect(f"ws://{host}/echo") as ws:
        assert ws.subprotocol is None


async def test_worker_initiated_close_reaches_client(host):
    async with connect(f"ws://{host}/echo") as ws:
        await ws.send("close:4002:server bye")
        with pytest.raises(websockets.ConnectionClosed) as info:
            await recv(ws)
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4002, "server bye")


async def test_client_initiated_close_reaches_worker(host):
    async with connect(f"ws://{host}/echo") as ws:
        await ws.close(4001, "client bye")
    seen = await wait_for_last_close(host, 4001)
    assert seen == {"code": 4001, "reason": "client bye", "wasClean": True}


async def test_dropped_connection_is_an_unclean_close(host):
    ws = await connect(f"ws://{host}/echo")
    await ws.send("ping")
    await recv(ws)
    ws.transport.abort()  # no close frame
    seen = await wait_for_last_close(host, 1006)
    assert seen == {
        "code": 1006,
        "reason": "WebSocket disconnected without sending Close frame.",
        "wasClean": False,
    }


async def wait_for_last_close(host: str, code: int) -> dict:
    for _ in range(100):
        seen = json.loads(await asyncio.to_thread(http_get, host, "/last-close"))
        if seen.get("code") == code:
            break
        await asyncio.sleep(0.05)
    return seen


@dataclass
class Upstream:
    port: int
    headers: list = field(default_factory=list)
    subprotocols: list = field(default_factory=list)
    closes: asyncio.Queue = field(default_factory=asyncio.Queue)

    def url(self, host: str, path: str = "/v1/realtime") -> str:
        return f"ws://{host}/relay?upstream=" + quote(f"ws://127.0.0.1:{self.port}{path}", safe="")


@pytest.fixture
async def upstream():
    """A websockets server standing in for the real upstream."""
    state = Upstream(port=0)

    def process_request(connection, request):
        if request.path == "/reject":
            return connection.respond(HTTPStatus.FORBIDDEN, "nope\n")
        return None

    async def handler(ws):
        state.headers.append(ws.request.headers)
        state.subprotocols.append(ws.subprotocol)
        try:
            async for message in ws:
                if message == "please close":
                    await ws.close(4004, "upstream bye")
                elif isinstance(message, str):
                    await ws.send("upstream:" + message)
                else:
                    await ws.send(b"upstream:" + message)
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()
        await state.closes.put((ws.close_code, ws.close_reason))

    def select_subprotocol(connection, offered):
        return "realtime" if "realtime" in offered else None

    async with serve(
        handler,
        "127.0.0.1",
        0,
        select_subprotocol=select_subprotocol,
        process_request=process_request,
    ) as server:
        state.port = server.sockets[0].getsockname()[1]
        yield state


async def test_relay_through_outbound_websocket(host, upstream):
    async with connect(upstream.url(host), subprotocols=["realtime"]) as ws:
        assert ws.subprotocol == "realtime"  # the upstream's choice, passed back
        await ws.send("ping")
        assert await recv(ws) == "upstream:ping"
        await ws.send(b"\x00\xff")
        assert await recv(ws) == b"upstream:\x00\xff"
    (headers,) = upstream.headers
    assert headers["X-Relayed-By"] == "echo-entry"  # headers given to fetch() are sent
    assert upstream.subprotocols == ["realtime"]


async def test_relay_close_codes_both_ways(host, upstream):
    # client -> worker -> upstream
    async with connect(upstream.url(host)) as ws:
        await ws.send("ping")
        await recv(ws)
        await ws.close(4003, "client leaves")
    assert await asyncio.wait_for(upstream.closes.get(), 10) == (4003, "client leaves")

    # upstream -> worker -> client
    async with connect(upstream.url(host)) as ws:
        await ws.send("please close")
        with pytest.raises(websockets.ConnectionClosed) as info:
            await recv(ws)
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4004, "upstream bye")


async def test_relay_refused_handshake_keeps_status_and_body(host, upstream):
    with pytest.raises(websockets.InvalidStatus) as info:
        async with connect(upstream.url(host, "/reject")):
            pass
    assert info.value.response.status_code == 403
    assert info.value.response.body == b"nope\n"


async def test_relay_unreachable_upstream_rejects_fetch(host):
    url = f"ws://{host}/relay?upstream=" + quote(f"ws://127.0.0.1:{unused_port()}/", safe="")
    with pytest.raises(websockets.InvalidStatus) as info:
        async with connect(url):
            pass
    assert info.value.response.status_code == 502  # echo_entry's answer to a rejected fetch()
    assert info.value.response.body.startswith(b"upstream unreachable")


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- static assets --------------------------------------------------------------------------------

ASSET_FILES = {
    "app.js": b"console.log('app');\n",
    "api/data.json": b'{"from": "assets"}',
    "api/docs/readme.txt": b"docs\n",
    "_headers": b"/*\n  X-Everywhere: yes\n/app.js\n  ! Cache-Control\n/api/docs/:name\n  X-Doc: :name\n",
}


@pytest.fixture(scope="module")
def assets_host(tmp_path_factory):
    """The host serving echo_entry.py with static assets: the Worker first under /api/, except
    /api/docs/."""
    assets = tmp_path_factory.mktemp("assets")
    for name, content in ASSET_FILES.items():
        (assets / name).parent.mkdir(parents=True, exist_ok=True)
        (assets / name).write_bytes(content)
    rules = ["--assets-run-worker-first", "/api/*", "--assets-run-worker-first", "!/api/docs/*"]
    options = ["--assets", str(assets), "--assets-binding", "ASSETS", *rules]
    options += ["--assets-html-handling", "none"]
    yield from run_host(tmp_path_factory.mktemp("worker_host_assets"), options)


def fetch(host: str, path: str, method: str = "GET", headers: dict | None = None):
    request = urllib.request.Request(f"http://{host}{path}", method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_assets_are_served_before_the_worker_unless_a_rule_says_otherwise(assets_host):
    status, headers, body = fetch(assets_host, "/app.js")
    assert (status, body) == (200, ASSET_FILES["app.js"])
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert fetch(assets_host, "/api/data.json")[2] == b"echo worker\n"  # /api/*: the Worker first
    status, headers, body = fetch(assets_host, "/api/docs/readme.txt")  # !/api/docs/*: the assets
    assert (status, body) == (200, b"docs\n")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert fetch(assets_host, "/missing.js")[2] == b"echo worker\n"  # no file: the Worker
    assert fetch(assets_host, "/_headers")[2] == b"echo worker\n"  # not an asset


def test_assets_etag_methods_and_headers_file(assets_host):
    status, headers, _ = fetch(assets_host, "/api/docs/readme.txt")
    assert headers["Cache-Control"] == "public, max-age=0, must-revalidate"
    assert (headers["X-Everywhere"], headers["X-Doc"]) == ("yes", "readme.txt")
    etag = headers["ETag"]
    assert fetch(assets_host, "/api/docs/readme.txt", headers={"If-None-Match": etag})[0] == 304
    assert fetch(assets_host, "/api/docs/readme.txt", headers={"If-None-Match": "W/" + etag})[0] == 304
    status, headers, body = fetch(assets_host, "/app.js", method="HEAD")
    assert (status, body) == (200, b"")
    assert "Cache-Control" not in headers  # unset by the _headers rule
    assert headers["X-Everywhere"] == "yes"
    assert fetch(assets_host, "/app.js", method="POST")[0] == 405


def test_the_binding_reaches_the_assets_whatever_the_rules(assets_host):
    status, _, body = fetch(assets_host, "/asset?path=/api/data.json")
    assert (status, body) == (200, ASSET_FILES["api/data.json"])
    assert fetch(assets_host, "/asset?path=/nope")[0] == 404


async def test_an_upgrade_to_an_asset_path_gets_the_file(assets_host):
    with pytest.raises(websockets.InvalidStatus) as info:
        async with connect(f"ws://{assets_host}/app.js"):
            pass
    assert info.value.response.status_code == 200
    assert info.value.response.body == ASSET_FILES["app.js"]
