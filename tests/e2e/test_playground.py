"""The playground's files over HTTP from a real gateway process, on both runtimes: the same bytes, types
and headers from the standalone server (read from the package) and from the Worker (its static
assets, on the local host's emulation of Cloudflare's asset router and server). And ``/`` stays the
realtime endpoint for everything that is not a browser asking for a page."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets
from support.gateway_process import GatewayProcess

from shared.playground import ASSETS, HEADERS, PAGE

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "playground"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def request(
    gateway: GatewayProcess, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    call = urllib.request.Request(
        f"http://127.0.0.1:{gateway.port}{path}", method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def assert_page_headers(headers: dict[str, str]) -> None:
    for name, value in HEADERS.items():
        assert headers[name.lower()] == value, name


def test_a_browser_gets_the_page_at_slash(gateway: GatewayProcess) -> None:
    status, headers, body = request(gateway, "/", headers={"Accept": BROWSER_ACCEPT})
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert body == (PACKAGE / PAGE.name).read_bytes()
    assert_page_headers(headers)


def test_an_api_client_at_slash_still_gets_426(gateway: GatewayProcess) -> None:
    for accept in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}):
        status, _, body = request(gateway, "/", headers=accept)
        assert status == 426
        assert json.loads(body)["error"]["code"] == "upgrade_required"


async def test_a_websocket_at_slash_is_still_a_session_even_accepting_html(gateway: GatewayProcess) -> None:
    url = gateway.url("/", provider="simulator")
    async with websockets.connect(url, additional_headers={"Accept": BROWSER_ACCEPT}) as socket:
        assert json.loads(await socket.recv())["type"] == "session.created"


@pytest.mark.parametrize("path", sorted(ASSETS))
def test_every_file_is_served_as_it_is_with_its_type_and_the_page_headers(
    gateway: GatewayProcess, path: str
) -> None:
    status, headers, body = request(gateway, path)
    assert status == 200
    assert body == (PACKAGE / ASSETS[path].name).read_bytes()
    assert headers["content-type"] == ASSETS[path].content_type
    assert headers["cache-control"] == "public, max-age=0, must-revalidate"
    assert_page_headers(headers)
    # Revalidation by ETag, as browsers do with max-age=0.
    status, again, body = request(gateway, path, headers={"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")
    assert again["etag"] == headers["etag"]


def test_head_and_other_methods(gateway: GatewayProcess) -> None:
    status, headers, body = request(gateway, "/playground/app.js", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    status, headers, _ = request(gateway, "/playground/app.js", method="POST")
    assert status == 405
    status, headers, _ = request(gateway, "/", method="HEAD", headers={"Accept": BROWSER_ACCEPT})
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"


def test_a_file_the_page_does_not_have_is_the_gateways_404(gateway: GatewayProcess) -> None:
    for path in ("/playground/nope.js", "/playground/", "/playground"):
        status, _, body = request(gateway, path, headers={"Accept": BROWSER_ACCEPT})
        assert status == 404, path
        assert json.loads(body)["error"]["code"] == "not_found"
