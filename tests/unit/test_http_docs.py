"""The HTTP endpoints' table: each row is OpenAI's endpoint for the SDK call it names, and in the README."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from shared.http_routes import HTTP_ENDPOINTS, HttpEndpoint, readme_rows

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SDK = Path(openai.__file__).parent
# The SDK's reference: <code title="post /realtime/calls/{call_id}/accept">client.realtime.calls.<a>accept</a>
_METHOD = re.compile(r'<code title="(\w+) ([^"]+)">(client\.[\w.]+?)\.<a [^>]*>(\w+)</a>')


@functools.cache
def sdk_reference() -> dict[str, tuple[str, str]]:
    """Each SDK call (``client.realtime.calls.accept``) and its (METHOD, path with ``{id}``)."""
    reference = {}
    for api in SDK.glob("resources/**/api.md"):
        for method, path, owner, name in _METHOD.findall(api.read_text()):
            reference[f"{owner}.{name}"] = (method.upper(), re.sub(r"\{\w+_id\}", "{id}", path))
    return reference


@pytest.mark.parametrize("endpoint", HTTP_ENDPOINTS, ids=lambda endpoint: endpoint.name)
def test_each_row_is_the_sdk_calls_own_endpoint(endpoint: HttpEndpoint) -> None:
    assert sdk_reference()[endpoint.sdk_call] == (endpoint.method, endpoint.path)
    target: object = AsyncOpenAI(api_key="unused")
    for name in endpoint.sdk_call.split(".")[1:]:
        target = getattr(target, name)
    assert callable(target)


def test_every_sdk_call_on_these_resources_has_a_row() -> None:
    """The SDK's realtime and Live HTTP methods are all in the table (none left unrelayed)."""
    served = {endpoint.sdk_call for endpoint in HTTP_ENDPOINTS}
    relevant = {call for call in sdk_reference() if call.startswith(("client.realtime.", "client.live."))}
    assert relevant == served


@pytest.mark.parametrize("row", readme_rows())
def test_each_row_is_in_the_readmes_endpoint_table(row: str) -> None:
    assert row in README.splitlines()
