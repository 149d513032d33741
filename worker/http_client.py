"""The relayed HTTP endpoints on workerd: read the body, ``fetch`` the provider, return the answer.

What the request means and what the client gets are :mod:`shared.http_relay`'s; this only moves the
bytes. A success's body is handed back as the provider's own stream (a recording is never held in
memory); an ``AbortController`` bounds the wait for the provider's answer. workerd's ``fetch`` gives
no reason for a failure, so a refused and a dropped connection both read ``upstream_unreachable``.
"""

from __future__ import annotations

import time
from typing import Any

from js import AbortController, Object, Response, clearTimeout, fetch, setTimeout
from pyodide.ffi import JsProxy, create_proxy, to_js
from workers import Response as WorkersResponse

from shared.admission import Admission
from shared.answers import RawAnswer
from shared.config import Settings
from shared.http_relay import (
    MAX_ERROR_BODY_BYTES,
    NULL_BODY_STATUSES,
    HttpExchange,
    UpstreamHttpFailure,
    plan_http,
)


async def relay_http(
    request: Any, raw_path: str, query: str, headers: dict[str, str], settings: Settings, admission: Admission
) -> WorkersResponse:
    """Answer one request to a relayed HTTP endpoint (``request`` is the SDK's ``workers.Request``)."""
    body = await _read_at_most(request.body, settings.max_http_body_bytes + 1)
    outcome = plan_http(
        request.method, raw_path, query, headers, body, settings, time.time(), admission, time.monotonic()
    )
    if isinstance(outcome, RawAnswer):
        return respond(outcome)
    return await _exchange(outcome)


async def _exchange(exchange: HttpExchange) -> WorkersResponse:
    upstream = exchange.request
    controller = AbortController.new()
    abort = create_proxy(lambda: controller.abort())  # destroyed below: it may never be called
    timer = setTimeout(abort, upstream.timeout * 1000)
    options: dict[str, Any] = {
        "method": upstream.method,
        "headers": upstream.headers,
        "redirect": "manual",
        "signal": controller.signal,
    }
    if upstream.body:
        options["body"] = to_js(upstream.body)
    try:
        try:
            response = await fetch(upstream.url, to_js(options, dict_converter=Object.fromEntries))
        except Exception:  # JsException or AbortError: the text may hold the URL
            timed_out = bool(controller.signal.aborted)
            return respond(
                exchange.failed(UpstreamHttpFailure.TIMEOUT if timed_out else UpstreamHttpFailure.UNREACHABLE)
            )
        headers = {
            name.lower(): value for name, value in Object.fromEntries(response.headers).to_py().items()
        }
        head = exchange.head(response.status, headers)
        if head is not None:  # the provider's body goes on as it comes
            body = None if head.status in NULL_BODY_STATUSES else response.body
            options = {"status": head.status, "headers": head.headers}
            return WorkersResponse(Response.new(body, to_js(options, dict_converter=Object.fromEntries)))
        try:
            error = await _read_at_most(response.body, MAX_ERROR_BODY_BYTES + 1)
        except Exception:
            timed_out = bool(controller.signal.aborted)
            return respond(
                exchange.failed(UpstreamHttpFailure.TIMEOUT if timed_out else UpstreamHttpFailure.DROPPED)
            )
        return respond(exchange.answer(response.status, headers, error))
    finally:
        clearTimeout(timer)
        abort.destroy()


async def _read_at_most(stream: JsProxy | None, limit: int) -> bytes:
    """A JS ``ReadableStream``'s bytes up to ``limit`` (then it is cancelled: the caller sees it is over)."""
    if stream is None or not stream:  # no body: None, or JS null (falsy)
        return b""
    reader = stream.getReader()
    data = bytearray()
    try:
        while len(data) < limit:
            chunk = await reader.read()
            if chunk.done:
                break
            data += chunk.value.to_bytes()
    finally:
        if len(data) >= limit:
            await reader.cancel()
        reader.releaseLock()
    return bytes(data[:limit])


def respond(answer: RawAnswer) -> WorkersResponse:
    body = None if answer.status in NULL_BODY_STATUSES or not answer.body else answer.body
    return WorkersResponse(body, status=answer.status, headers=answer.headers)
