"""The aiohttp application: routes requests, upgrades realtime ones, owns the upstream client."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from shared.auth import TOKENS_PATH, token_answer
from shared.config import Settings
from shared.handshake import plan_session
from shared.routes import HttpAnswer, http_answer

from .session import StandaloneSession

logger = logging.getLogger("realtime_gateway")

SETTINGS = web.AppKey("settings", Settings)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request: a plain HTTP answer, or a realtime session on an upgraded socket."""
    settings = request.app[SETTINGS]
    headers = {name.lower(): value for name, value in request.headers.items()}
    if request.path == TOKENS_PATH:
        body = await request.read()  # aiohttp caps it at client_max_size (1 MiB)
        return _respond(token_answer(request.method, request.path, headers, body, settings, time.time()))
    wants_websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    answer = http_answer(request.method, request.path, wants_websocket)
    if answer is not None:
        return _respond(answer)
    plan = plan_session(request.path, request.query_string, headers, settings, time.time())
    if isinstance(plan, HttpAnswer):  # refused before the upgrade (origin, gateway token)
        return _respond(plan)
    session = StandaloneSession(plan, settings, request.app[HTTP_CLIENT])
    return await session.run(request)


def _respond(answer: HttpAnswer) -> web.Response:
    return web.Response(
        status=answer.status, text=answer.json(), content_type="application/json", headers=answer.headers
    )


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    # One connection pool for every upstream socket; no per-host cap, each session is one socket.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        app[HTTP_CLIENT] = client
        yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_http_client)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
