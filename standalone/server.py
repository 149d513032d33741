"""The aiohttp application: routes requests, upgrades realtime ones, owns the upstream client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from shared.config import Settings
from shared.handshake import plan_session
from shared.routes import http_answer

from .session import StandaloneSession

logger = logging.getLogger("realtime_gateway")

SETTINGS = web.AppKey("settings", Settings)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request: a plain HTTP answer, or a realtime session on an upgraded socket."""
    wants_websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    answer = http_answer(request.method, request.path, wants_websocket)
    if answer is not None:
        return web.Response(
            status=answer.status,
            text=answer.json(),
            content_type="application/json",
            headers=answer.headers,
        )
    settings = request.app[SETTINGS]
    headers = {name.lower(): value for name, value in request.headers.items()}
    plan = plan_session(request.path, request.query_string, headers, settings)
    session = StandaloneSession(plan, settings, request.app[HTTP_CLIENT])
    return await session.run(request)


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
