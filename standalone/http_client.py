"""The relayed HTTP endpoints on aiohttp: read the body, make the provider request, write the answer.

What the request means and what the client gets are :mod:`shared.http_relay`'s; this only moves the
bytes, through one :class:`aiohttp.ClientSession` per process (its connection pool is reused).
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from aiohttp import web

from shared.admission import Admission
from shared.answers import RawAnswer
from shared.config import Settings
from shared.http_relay import MAX_ERROR_BODY_BYTES, HttpExchange, UpstreamHttpFailure, plan_http

logger = logging.getLogger("realtime_gateway")

STREAM_CHUNK_BYTES = 64 * 1024


async def relay_http(
    request: web.Request, settings: Settings, admission: Admission, client: aiohttp.ClientSession
) -> web.StreamResponse:
    """Answer one request to a relayed HTTP endpoint."""
    body = await _read_at_most(request.content, settings.max_http_body_bytes + 1)
    headers = {name.lower(): value for name, value in request.headers.items()}
    outcome = plan_http(
        request.method,
        request.rel_url.raw_path,
        request.rel_url.raw_query_string,
        headers,
        body,
        settings,
        time.time(),
        admission,
        asyncio.get_running_loop().time(),
    )
    if isinstance(outcome, RawAnswer):
        return _respond(outcome)
    return await _exchange(request, outcome, client)


async def _exchange(
    request: web.Request, exchange: HttpExchange, client: aiohttp.ClientSession
) -> web.StreamResponse:
    upstream = exchange.request
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=upstream.timeout, sock_read=upstream.timeout)
    try:
        async with client.request(
            upstream.method,
            upstream.url,
            headers=upstream.headers,
            data=upstream.body,
            allow_redirects=False,
            timeout=timeout,
        ) as response:
            headers = {name.lower(): value for name, value in response.headers.items()}
            head = exchange.head(response.status, headers)
            if head is None:
                error = await _read_at_most(response.content, MAX_ERROR_BODY_BYTES + 1)
                return _respond(exchange.answer(response.status, headers, error))
            answer = web.StreamResponse(status=head.status, headers=head.headers)
            await answer.prepare(request)
            try:
                async for chunk in response.content.iter_chunked(STREAM_CHUNK_BYTES):
                    await answer.write(chunk)
            except (aiohttp.ClientError, TimeoutError):
                # Cut off mid-body: the client must see a broken answer, not a short complete one.
                logger.warning(
                    "http relay cut off endpoint=%s: the provider's answer stopped", exchange.endpoint.name
                )
                if request.transport is not None:
                    request.transport.abort()
                return answer
            await answer.write_eof()
            return answer
    except TimeoutError:
        return _respond(exchange.failed(UpstreamHttpFailure.TIMEOUT))
    except aiohttp.ClientConnectorError:
        return _respond(exchange.failed(UpstreamHttpFailure.UNREACHABLE))
    except aiohttp.ClientError:
        return _respond(exchange.failed(UpstreamHttpFailure.DROPPED))


async def _read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The stream's bytes up to ``limit`` (reading stops there: the caller sees it is over)."""
    data = bytearray()
    while len(data) < limit:
        chunk = await stream.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _respond(answer: RawAnswer) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
