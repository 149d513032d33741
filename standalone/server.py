"""The aiohttp application: routes requests, upgrades realtime ones, owns the upstream client.

It also keeps what is per process: the admission bookkeeping (:class:`shared.admission.Admission`),
the live sessions, so that a shutdown (SIGTERM) can tell every client and close every provider
connection before the process exits, and the accounting (ledger, prices, ``GET /metrics``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from shared.admission import Admission
from shared.answers import error_body
from shared.auth import TOKENS_PATH, token_answer
from shared.config import Settings
from shared.handshake import plan_session
from shared.routes import HttpAnswer, http_answer
from shared.stats import METRICS_PATH, STATS_PATH, Figure, metrics_refusal, stats_answer
from shared.usage.meter import UsageMeter

from .accounting import Accounting
from .client_socket import upgrade_answer
from .metrics import CONTENT_TYPE
from .session import StandaloneSession

logger = logging.getLogger("realtime_gateway")


@dataclass(eq=False)
class LiveSessions:
    """The process's sessions: who may open one (admission) and who is open (for the shutdown)."""

    admission: Admission
    sessions: set[StandaloneSession] = field(default_factory=set)
    shutting_down: bool = False
    started: float = field(default_factory=time.monotonic)


SETTINGS = web.AppKey("settings", Settings)
LIVE = web.AppKey("live_sessions", LiveSessions)
ACCOUNTING = web.AppKey("accounting", Accounting)


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request: a plain HTTP answer, or a realtime session on an upgraded socket."""
    settings = request.app[SETTINGS]
    headers = {name.lower(): value for name, value in request.headers.items()}
    if request.path == STATS_PATH:
        live = request.app[LIVE]
        figures = _process_figures(live)
        return _respond(stats_answer(request.method, headers, settings, live.admission, figures))
    if request.path == TOKENS_PATH:
        body = await request.read()  # aiohttp caps it at client_max_size (1 MiB)
        return _respond(token_answer(request.method, request.path, headers, body, settings, time.time()))
    if request.path == METRICS_PATH:
        refused = metrics_refusal(request.method, headers, settings)
        if refused is not None:
            return _respond(refused)
        metrics = request.app[ACCOUNTING].metrics.render()
        return web.Response(body=metrics, headers={"Content-Type": CONTENT_TYPE})
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
    plan, ticket = live.admission.admit_plan(plan, asyncio.get_running_loop().time())

    def meter(now: float) -> UsageMeter:
        return accounting.meter(plan, now, spent_today)

    session = StandaloneSession(plan, settings, meter, accounting.record)
    live.sessions.add(session)
    try:
        return await session.run(request, upgrade)
    finally:
        live.sessions.discard(session)
        live.admission.release(ticket)


def _process_figures(live: LiveSessions) -> dict[str, Figure]:
    """What ``GET /debug/stats`` adds for this process (descriptors and RSS where /proc exists)."""
    proc = Path("/proc/self")
    rss = None
    if (proc / "statm").exists():
        rss = int((proc / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {
        "runtime": "standalone",
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


async def _close_ledger(app: web.Application) -> None:
    """After every session has ended (and handed over its final record): write them all out, within
    the part of SHUTDOWN_TIMEOUT_SECONDS left for tidying up."""
    _, tidy = shutdown_budget(app[SETTINGS])
    await asyncio.get_running_loop().run_in_executor(None, app[ACCOUNTING].close, tidy)


def create_app(settings: Settings) -> web.Application:
    """The application; the usage ledger is opened (created, migrated) here, at start."""
    app = web.Application()
    app[SETTINGS] = settings
    live = app[LIVE] = LiveSessions(Admission(settings))
    app[ACCOUNTING] = Accounting(settings, lambda: (session.relay.meter for session in live.sessions))
    app.on_shutdown.append(_close_sessions)
    app.on_cleanup.append(_close_ledger)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
