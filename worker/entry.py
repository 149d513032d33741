"""The Worker's entry point: route the request, upgrade realtime ones, relay through the core.

It also exports the ``FLEET`` Durable Object class (:mod:`worker.fleet`): workerd finds a Durable
Object class among the main module's names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint

from shared.admission import Admission
from shared.auth import TOKENS_PATH, token_answer
from shared.config import Settings
from shared.fleet import FleetUnavailable, Pass, SessionGate, unavailable_answer
from shared.handshake import plan_session
from shared.http_relay import is_http_endpoint
from shared.logs import configure_logging
from shared.playground import asset_for
from shared.revocation import REVOKE_PATH, revoke_request, revoked_answer
from shared.routes import HttpAnswer, http_answer
from shared.stats import STATS_PATH, stats_answer
from shared.usage.meter import UsageMeter
from worker.accounting import SessionRecords, WorkerAccounting
from worker.fleet import FLEET_BINDING, DurableObjectFleetStore, FleetObject
from worker.http_client import relay_http
from worker.session import WorkerSession

__all__ = ["Default", "FleetObject"]

_settings: Settings | None = None
# The isolate's admission gate: sessions open in this isolate (MAX_SESSIONS holds per isolate), and
# the per-subject limits and revocations, deployment-wide through the FLEET Durable Object when it
# is bound (else per isolate too: Cloudflare runs many isolates).
_gate: SessionGate | None = None
_accounting: WorkerAccounting | None = None


def gate_for(settings: Settings, env: Any) -> SessionGate:
    """The isolate's gate (one for every request this isolate serves)."""
    global _gate
    if _gate is None:
        namespace = getattr(env, FLEET_BINDING, None)
        store = None
        if namespace is not None:
            store = DurableObjectFleetStore(namespace, settings.durable_object_timeout_seconds)
        _gate = SessionGate(settings, Admission(settings), store)
    return _gate


def accounting_for(settings: Settings) -> WorkerAccounting:
    """The isolate's prices (its ledger is each request's ``USAGE_DB`` binding)."""
    global _accounting
    if _accounting is None:
        _accounting = WorkerAccounting(settings)
    return _accounting


def settings_from_env(env: object) -> Settings:
    """The same settings model as the standalone server, fed from the Worker's ``env`` bindings.

    Read once per isolate: bindings do not change while it lives. Logging is set up then too.
    """
    global _settings
    if _settings is None:
        values = {}
        for names in (Settings.names, lambda: Settings.provider_key_names(values)):
            for name in names():
                value = getattr(env, name, None)
                if isinstance(value, str):  # vars and secrets are strings; other bindings are not
                    values[name] = value
        _settings = Settings.from_mapping(values)
        # Workers Logs reads the fields of a JSON line: the per-session usage line is JSON either way.
        configure_logging(_settings, "%(levelname)s %(name)s %(message)s", usage_as_json=True)
    return _settings


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlsplit(request.url)
        headers = {name.lower(): value for name, value in request.headers.items()}
        if url.path == STATS_PATH:
            settings = settings_from_env(self.env)
            gate = gate_for(settings, self.env)
            runtime = {
                "runtime": "worker",
                "scope": "isolate",
                **gate.figures(),
            }  # each isolate counts its own
            return _respond(stats_answer(request.method, headers, settings, gate.admission, runtime))
        if url.path == REVOKE_PATH:
            settings, body = settings_from_env(self.env), await request.text()
            return _respond(
                await _revoke(request.method, headers, body, settings, gate_for(settings, self.env))
            )
        if url.path == TOKENS_PATH:
            settings, body = settings_from_env(self.env), await request.text()
            return _respond(token_answer(request.method, url.path, headers, body, settings, time.time()))
        if is_http_endpoint(request.method, url.path, headers):  # relayed to the provider over HTTP
            settings = settings_from_env(self.env)
            admission = gate_for(settings, self.env).admission
            return await relay_http(request, url.path, url.query, headers, settings, admission)
        asset = asset_for(request.method, url.path, headers)
        if asset is not None:  # the playground's files are the ASSETS binding's (wrangler.toml [assets])
            at = f"{url.scheme}://{url.netloc}{asset.path}"
            return await self.env.ASSETS.fetch(at, method=request.method, headers=request.js_object.headers)
        wants_websocket = headers.get("upgrade", "").lower() == "websocket"
        answer = http_answer(request.method, url.path, wants_websocket)
        if answer is not None:
            return _respond(answer)
        settings = settings_from_env(self.env)
        plan = plan_session(url.path, url.query, headers, settings, time.time())
        if isinstance(plan, HttpAnswer):  # refused before the upgrade (origin, gateway token)
            return _respond(plan)
        # Over a budget or a limit, the socket is still accepted: the client is told why (error event,
        # close 1008 or 1013).
        accounting, ledger = accounting_for(settings), WorkerAccounting.ledger(self.env)
        plan, spent_today = await accounting.admit(plan, ledger)
        gate = gate_for(settings, self.env)
        admitted = await gate.admit_plan(plan, time.monotonic(), time.time())
        if isinstance(admitted, HttpAnswer):  # a revoked gateway token
            return _respond(admitted)
        plan, ticket = admitted

        def released() -> None:  # the session's end: its places back, then no more polls
            self.ctx.waitUntil(asyncio.ensure_future(gate.release(ticket, time.monotonic())))

        def meter(now: float) -> UsageMeter:
            return accounting.meter(plan, now, spent_today)

        records = SessionRecords(ledger, self.ctx.waitUntil) if ledger is not None else None
        session = WorkerSession(
            plan,
            settings,
            on_end=released,
            token_revoked=_revocation_check(gate, ticket),
            meter=meter,
            record=records.write if records is not None else None,
        )
        pending = session.start()
        if pending is not None:
            self.ctx.waitUntil(pending)
        response_headers = {"Sec-WebSocket-Protocol": plan.subprotocol} if plan.subprotocol else {}
        return Response(None, status=101, web_socket=session.client_socket, headers=response_headers)


def _revocation_check(gate: SessionGate, ticket: Pass | None) -> Callable[[], Awaitable[bool]] | None:
    """What the session's poll asks (REVOCATION_POLL_SECONDS): was its token revoked? It refreshes
    the session's place in the FLEET Durable Object too. None: no gateway token to watch."""
    if ticket is None or ticket.token_id is None:
        return None

    async def revoked() -> bool:
        return ticket.token_id in await gate.poll([ticket], time.monotonic(), time.time())

    return revoked


async def _revoke(
    method: str, headers: dict[str, str], body: str, settings: Settings, gate: SessionGate
) -> HttpAnswer:
    """``POST /v1/tokens/revoke``: recorded in this isolate and in the FLEET Durable Object."""
    revocation = revoke_request(method, headers, body, settings, time.time())
    if isinstance(revocation, HttpAnswer):
        return revocation
    try:
        await gate.revoke(revocation, time.monotonic(), time.time())
    except FleetUnavailable:
        return unavailable_answer()
    return revoked_answer(revocation)


def _respond(answer: HttpAnswer) -> Response:
    return Response(
        answer.json(), status=answer.status, headers={"content-type": "application/json", **answer.headers}
    )
