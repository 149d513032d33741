"""The aiohttp application: routes requests, upgrades realtime ones, owns the upstream client.

It also keeps what is per process: the admission gate (:class:`shared.fleet.SessionGate`: the
process's own count, and the fleet-wide limits on Redis when ``REDIS_URL`` is set), the live
sessions, so that a shutdown (SIGTERM) can tell every client and close every provider connection
before the process exits, and a revoked token's sessions can be ended (:func:`_watch_revocations`),
and the accounting (ledger, prices, ``GET /metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from shared.admission import Admission
from shared.answers import error_body
from shared.auth import TOKENS_PATH, token_answer
from shared.config import Settings
from shared.fleet import FleetUnavailable, Pass, SessionGate, unavailable_answer
from shared.handshake import plan_session
from shared.http_relay import is_http_endpoint
from shared.playground import asset_for
from shared.revocation import REVOKE_PATH, revoke_request, revoked_answer
from shared.routes import HttpAnswer, http_answer
from shared.stats import METRICS_PATH, STATS_PATH, Figure, metrics_refusal, stats_answer
from shared.usage.meter import UsageMeter

from . import playground
from .accounting import Accounting
from .client_socket import upgrade_answer
from .http_client import relay_http
from .metrics import CONTENT_TYPE
from .session import StandaloneSession

logger = logging.getLogger("realtime_gateway")


@dataclass(eq=False)
class LiveSessions:
    """The process's sessions: who may open one (the gate) and who is open, with their passes
    (for the shutdown and the revocation polls)."""

    gate: SessionGate
    sessions: dict[StandaloneSession, Pass | None] = field(default_factory=dict)
    shutting_down: bool = False
    started: float = field(default_factory=time.monotonic)
    workers: int = 1  # the processes sharing the port (``serve --workers``), this one among them


SETTINGS = web.AppKey("settings", Settings)
LIVE = web.AppKey("live_sessions", LiveSessions)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
PLAYGROUND = web.AppKey("playground_files", dict[str, bytes])
ACCOUNTING = web.AppKey("accounting", Accounting)


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request: a plain HTTP answer, or a realtime session on an upgraded socket."""
    settings = request.app[SETTINGS]
    headers = {name.lower(): value for name, value in request.headers.items()}
    if request.path == STATS_PATH:
        live = request.app[LIVE]
        figures = _process_figures(live)
        return _respond(stats_answer(request.method, headers, settings, live.gate.admission, figures))
    if request.path == REVOKE_PATH:
        return _respond(await _revoke(request, headers, settings))
    if request.path == TOKENS_PATH:
        body = await request.read()  # aiohttp caps it at client_max_size (1 MiB)
        return _respond(token_answer(request.method, request.path, headers, body, settings, time.time()))
    if request.path == METRICS_PATH:
        refused = metrics_refusal(request.method, headers, settings)
        if refused is not None:
            return _respond(refused)
        metrics = request.app[ACCOUNTING].metrics.render()
        return web.Response(body=metrics, headers={"Content-Type": CONTENT_TYPE})
    if is_http_endpoint(request.method, request.rel_url.raw_path, headers):  # relayed over HTTP
        return await relay_http(request, settings, request.app[LIVE].gate.admission, request.app[HTTP_CLIENT])
    asset = asset_for(request.method, request.path, headers)
    if asset is not None:  # the playground page, or one of its files
        return playground.respond(asset, request.app[PLAYGROUND], request.method, headers)
    wants_websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    answer = http_answer(request.method, request.path, wants_websocket)
    if answer is not None:
        return _respond(answer)
    live = request.app[LIVE]
    if live.shutting_down:  # only a request already read when the listener closed gets here
        return _respond(
            HttpAnswer(503, error_body("server_shutting_down", "The gateway is shutting down; reconnect."))
        )
    plan = plan_session(request.path, request.query_string, headers, settings, time.time())
    if isinstance(plan, HttpAnswer):  # refused before the upgrade (origin, gateway token)
        return _respond(plan)
    upgrade = upgrade_answer(request, plan.subprotocol)
    if isinstance(upgrade, HttpAnswer):  # not a valid WebSocket handshake
        return _respond(upgrade)
    # Over a budget or a limit, the socket is still accepted: the client is told why (error event,
    # close 1008 or 1013).
    accounting = request.app[ACCOUNTING]
    plan, spent_today = await accounting.admit(plan)
    loop = asyncio.get_running_loop()
    admitted = await live.gate.admit_plan(plan, loop.time(), time.time())
    if isinstance(admitted, HttpAnswer):  # a revoked gateway token
        return _respond(admitted)
    plan, ticket = admitted

    def meter(now: float) -> UsageMeter:
        return accounting.meter(plan, now, spent_today)

    session = StandaloneSession(plan, settings, meter, accounting.record)
    live.sessions[session] = ticket
    try:
        return await session.run(request, upgrade)
    finally:
        live.sessions.pop(session, None)
        await live.gate.release(ticket, loop.time())


async def _revoke(request: web.Request, headers: dict[str, str], settings: Settings) -> HttpAnswer:
    """``POST /v1/tokens/revoke``: recorded here at once, and for the fleet in Redis if set."""
    body = await request.read()
    revocation = revoke_request(request.method, headers, body, settings, time.time())
    if isinstance(revocation, HttpAnswer):
        return revocation
    live = request.app[LIVE]
    try:
        await live.gate.revoke(revocation, asyncio.get_running_loop().time(), time.time())
    except FleetUnavailable:
        return unavailable_answer()
    _end_revoked(live, {revocation.token_id})  # this process's sessions: now, not at the next poll
    return revoked_answer(revocation)


def _end_revoked(live: LiveSessions, token_ids: set[str]) -> None:
    for session, admitted in list(live.sessions.items()):
        if admitted is not None and admitted.token_id in token_ids:
            session.token_revoked()


async def _watch_revocations(app: web.Application) -> None:
    """Every REVOCATION_POLL_SECONDS: refresh this process's fleet-wide places, end the sessions
    whose token was revoked (anywhere in the fleet, with Redis)."""
    live, loop = app[LIVE], asyncio.get_running_loop()
    period = app[SETTINGS].revocation_poll_seconds
    while True:
        await asyncio.sleep(period)
        try:
            passes = [admitted for admitted in live.sessions.values() if admitted is not None]
            revoked = await live.gate.poll(passes, loop.time(), time.time())
            _end_revoked(live, revoked)
        except Exception:  # a bug here must not stop the polls for the rest of the process's life
            logger.exception("revocation poll failed")


def _process_figures(live: LiveSessions) -> dict[str, Figure]:
    """What ``GET /debug/stats`` adds for this process (descriptors and RSS where /proc exists)."""
    proc = Path("/proc/self")
    rss = None
    if (proc / "statm").exists():
        rss = int((proc / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {
        "runtime": "standalone",
        "pid": os.getpid(),
        "workers": live.workers,
        **live.gate.figures(),
        "asyncio_tasks": len(asyncio.all_tasks()),
        "open_fds": len(os.listdir(proc / "fd")) if (proc / "fd").exists() else None,
        "rss_bytes": rss,
        "uptime_seconds": round(time.monotonic() - live.started, 1),
    }


def _respond(answer: HttpAnswer) -> web.Response:
    return web.Response(
        status=answer.status, text=answer.json(), content_type="application/json", headers=answer.headers
    )


def shutdown_budget(settings: Settings) -> tuple[float, float]:
    """SHUTDOWN_TIMEOUT_SECONDS split in two: how long sessions get to close, then how long aiohttp
    gets to finish the handlers (``run_app``'s ``shutdown_timeout``) once the rest are dropped."""
    total = settings.shutdown_timeout_seconds
    tidy = min(1.0, total / 4)
    return total - tidy, tidy


async def _close_sessions(app: web.Application) -> None:
    """On shutdown (the listener is already closed): tell every client, close every provider
    connection, wait for them up to the deadline, then drop what is left."""
    live = app[LIVE]
    live.shutting_down = True
    sessions = list(live.sessions)
    if not sessions:
        return
    grace, _ = shutdown_budget(app[SETTINGS])
    logger.info("shutting down: closing %d sessions (up to %g s)", len(sessions), grace)
    for session in sessions:
        session.shut_down()
    waits = [asyncio.ensure_future(session.finished.wait()) for session in sessions]
    _, pending = await asyncio.wait(waits, timeout=grace)
    for wait in pending:
        wait.cancel()
    left = [session for session in sessions if not session.finished.is_set()]
    if left:
        logger.warning("shutting down: dropping %d sessions that did not close in time", len(left))
        for session in left:
            session.abort()


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    """One HTTP client for the process's provider requests, its connections pooled; closed at exit."""
    app[HTTP_CLIENT] = aiohttp.ClientSession()
    yield
    await app[HTTP_CLIENT].close()


async def _close_ledger(app: web.Application) -> None:
    """After every session has ended (and handed over its final record): write them all out, within
    the part of SHUTDOWN_TIMEOUT_SECONDS left for tidying up."""
    _, tidy = shutdown_budget(app[SETTINGS])
    await asyncio.get_running_loop().run_in_executor(None, app[ACCOUNTING].close, tidy)


def create_app(settings: Settings, workers: int = 1) -> web.Application:
    """The gateway's application; ``workers`` is how many processes share its port (for the stats).
    The usage ledger is opened (created, migrated) here, at start."""
    app = web.Application()
    app[SETTINGS] = settings
    store = None
    if settings.redis_url is not None:
        from .redis_fleet import RedisFleetStore  # redis-py is needed only with REDIS_URL

        store = RedisFleetStore(settings)
    live = app[LIVE] = LiveSessions(SessionGate(settings, Admission(settings), store), workers=workers)
    app[ACCOUNTING] = Accounting(settings, lambda: (session.relay.meter for session in live.sessions))
    app.cleanup_ctx.append(_revocation_watch)
    app.cleanup_ctx.append(_http_client)
    app[PLAYGROUND] = playground.load_files()
    app.on_shutdown.append(_close_sessions)
    app.on_cleanup.append(_close_ledger)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _revocation_watch(app: web.Application) -> AsyncIterator[None]:
    """The poll task from start-up to clean-up, then the store's connections closed."""
    watch = asyncio.ensure_future(_watch_revocations(app))
    yield
    watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watch
    await app[LIVE].gate.close()
