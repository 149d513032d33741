"""``realtime-gateway``: run the gateway (``serve``), talk to one from a terminal (``chat``), mint a
gateway token with GATEWAY_SECRET (``token``) and revoke one (``token revoke``), or sum up the usage
ledger (``usage``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import logging
import os
import platform
import sqlite3
import ssl
import sys
import time
from collections.abc import AsyncIterator

from shared.config import Settings
from shared.logs import TEXT_FORMAT, configure_logging
from shared.usage.ledger import GROUPINGS
from shared.usage.prices import PricesError

FORMATS = ("table", "json", "csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="realtime-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway (settings come from the environment)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this certificate (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    serve.add_argument(
        "--workers",
        default=os.environ.get("WORKERS", "1"),
        help="worker processes sharing the port: a number, or auto (one per core); default 1",
    )
    # Set by the supervisor for its workers (standalone/supervisor.py).
    serve.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--worker-count", type=int, default=1, help=argparse.SUPPRESS)

    chat = commands.add_parser("chat", help="a terminal client: type a line, read the streamed reply")
    chat.add_argument("--url", default="ws://127.0.0.1:8080/v1/realtime")
    chat.add_argument("--provider", default="simulator", help="openai, azure or simulator (default)")
    chat.add_argument("--model", default="gpt-realtime", help="a GA model (default gpt-realtime)")
    chat.add_argument("--api-key", default=None, help="sent as a bearer token (default: none)")
    chat.add_argument("--audio", action="store_true", help="ask for spoken replies (shows transcripts)")
    chat.add_argument("--message", "-m", action="append", help="send this instead of reading stdin")

    token = commands.add_parser(
        "token", help="print a gateway token signed with GATEWAY_SECRET (from the environment)"
    )
    token.add_argument("--subject", help="who the token is for (logged, never the token); required")
    token.add_argument("--ttl", type=int, default=None, help="seconds (default TOKEN_DEFAULT_TTL_SECONDS)")
    token.add_argument(
        "--provider",
        action="append",
        default=[],
        help="allow only this provider (repeatable; default: any): a built-in one or one of PROVIDERS_FILE",
    )
    token.add_argument(
        "--model", action="append", default=[], help="allow only this model (repeatable; default: any)"
    )
    token.add_argument("--max-session-seconds", type=int, default=None, help="end sessions after this long")
    token_actions = token.add_subparsers(dest="token_action")
    revoke = token_actions.add_parser(
        "revoke",
        help="revoke a token: in Redis (REDIS_URL) for every gateway using it, or through a running "
        "gateway's POST /v1/tokens/revoke (--url, GATEWAY_ADMIN_KEY)",
    )
    revoke.add_argument("token", help="the token to revoke, or - to read it from stdin")
    revoke.add_argument("--url", default=None, help="a running gateway, e.g. http://127.0.0.1:8080")
    token.add_argument(
        "--max-cost-usd", type=float, default=None, help="end a session once it has cost this much (USD)"
    )

    usage = commands.add_parser(
        "usage", help="sum up the usage ledger (USAGE_DB) per session, subject, model or day"
    )
    usage.add_argument("--db", default=None, help="the ledger file (default: USAGE_DB, or usage.sqlite3)")
    usage.add_argument(
        "--since", default=None, help="sessions started at or after this ISO date or time (UTC)"
    )
    usage.add_argument("--until", default=None, help="sessions started before this ISO date or time (UTC)")
    usage.add_argument("--by", choices=GROUPINGS, default="session", help="one line per (default: session)")
    usage.add_argument("--format", choices=FORMATS, default="table", help="table (default), json or csv")

    args = parser.parse_args(argv)
    if args.command == "token":
        if args.token_action == "revoke":
            return _revoke(parser, args)
        return _token(parser, args)
    if args.command == "usage":
        return _usage(parser, args)
    if args.command == "serve":
        if bool(args.tls_cert) != bool(args.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        workers = _workers(parser, args.workers)
        if args.listen_fd is None and workers > 1:
            return _supervise(args.host, args.port, args.tls_cert, args.tls_key, workers)
        return _serve(args.host, args.port, args.tls_cert, args.tls_key, args.listen_fd, args.worker_count)
    from .chat import run_chat

    return asyncio.run(run_chat(args.url, args.provider, args.model, args.api_key, args.audio, args.message))


def _token(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from shared.tokens import mint

    try:
        settings = Settings.from_mapping(os.environ)
    except ValidationError as error:
        parser.error(f"bad settings in the environment: {error.errors()[0]['msg']}")
    if settings.gateway_secret is None:
        parser.error("GATEWAY_SECRET is not set: it signs the token")
    if not args.subject:
        parser.error("--subject is required to mint a token")
    ttl = args.ttl if args.ttl is not None else settings.token_default_ttl_seconds
    try:
        token = mint(
            settings.gateway_secret.get_secret_value(),
            subject=args.subject,
            now=time.time(),
            ttl_seconds=ttl,
            providers=args.provider,
            models=args.model,
            max_session_seconds=args.max_session_seconds,
            max_cost_usd=args.max_cost_usd,
        )
    except ValueError as error:
        parser.error(str(error))
    print(token)
    return 0


def _usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .usage_report import report

    path = args.db or os.environ.get("USAGE_DB") or "usage.sqlite3"
    try:
        print(report(path, args.by, args.since, args.until, args.format), end="")
    except (ValueError, OSError) as error:
        parser.error(str(error))
    return 0


def _revoke(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``token revoke``: through a running gateway (--url), else straight into Redis (REDIS_URL)."""
    import json

    from pydantic import ValidationError

    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    try:
        settings = Settings.from_mapping(os.environ)
    except ValidationError as error:
        parser.error(f"bad settings in the environment: {error.errors()[0]['msg']}")
    if args.url:
        status, answer = _post_revocation(args.url, token, settings)
    elif settings.redis_url is not None:
        status, answer = asyncio.run(_revoke_in_redis(token, settings))
    else:
        parser.error(
            "nowhere to revoke it: set REDIS_URL (the fleet's Redis), or pass --url of a running gateway "
            "(without Redis, a revocation holds in the gateway process that receives it)"
        )
    print(json.dumps(answer))
    return 0 if status == 200 else 1


def _post_revocation(url: str, token: str, settings: Settings) -> tuple[int, dict[str, object]]:
    import json
    import urllib.error
    import urllib.request

    from shared.revocation import REVOKE_PATH

    if settings.gateway_admin_key is None:
        raise SystemExit("GATEWAY_ADMIN_KEY is not set: POST /v1/tokens/revoke needs it")
    request = urllib.request.Request(
        url.rstrip("/") + REVOKE_PATH,
        data=json.dumps({"token": token}).encode(),
        headers={
            "Authorization": f"Bearer {settings.gateway_admin_key.get_secret_value()}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


async def _revoke_in_redis(token: str, settings: Settings) -> tuple[int, dict[str, object]]:
    import time

    from shared.answers import HttpAnswer
    from shared.revocation import revocation_for, revoked_answer
    from shared.tokens import TokenError, verify

    from .redis_fleet import RedisFleetStore

    if settings.gateway_secret is None:
        raise SystemExit("GATEWAY_SECRET is not set: it is needed to read the token")
    try:
        claims = verify(token, settings.gateway_secret.get_secret_value(), time.time(), check_expiry=False)
    except TokenError as error:
        return 400, {"error": {"code": error.code, "message": error.message}}
    revocation = revocation_for(claims, settings)
    store = RedisFleetStore(settings)
    try:
        await asyncio.wait_for(store.revoke(revocation), settings.redis_timeout_seconds)
    except Exception as error:  # whatever the client raised, Redis did not take it
        reason = f"{type(error).__name__}: {error}"[:200]
        return 503, {"error": {"code": "fleet_unavailable", "message": f"Redis did not answer ({reason})."}}
    finally:
        await store.close()
    answer: HttpAnswer = revoked_answer(revocation)
    return answer.status, answer.body


def _workers(parser: argparse.ArgumentParser, value: str) -> int:
    if value == "auto":
        from .supervisor import cpu_count

        return cpu_count()
    if not value.isdigit() or int(value) < 1:
        parser.error(f"--workers takes a number of at least 1, or auto (got {value!r})")
    return int(value)


def _supervise(host: str, port: int, tls_cert: str | None, tls_key: str | None, workers: int) -> int:
    from .supervisor import Supervisor, listening_sockets, worker_command

    settings = Settings.from_mapping(os.environ)
    configure_logging(settings)
    sockets = listening_sockets(host, port, workers)
    scheme = "wss" if tls_cert else "ws"
    print(
        f"realtime-gateway on {scheme}://{host}:{port}/v1/realtime with {workers} workers "
        f"(default provider: {settings.default_provider})",
        file=sys.stderr,
        flush=True,
    )
    code = Supervisor(settings, workers, worker_command(host, port, tls_cert, tls_key)).run(sockets)
    logging.getLogger("realtime_gateway").info("gateway stopped")
    return code


def _serve(
    host: str,
    port: int,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    listen_fd: int | None = None,
    workers: int = 1,
) -> int:
    """One gateway process: on ``host:port``, or as a supervisor's worker on the socket ``listen_fd``."""
    import socket

    from aiohttp import web

    from .internals import UnsupportedRelease, check
    from .server import create_app, shutdown_budget

    try:
        check()
    except UnsupportedRelease as error:
        print(f"realtime-gateway: {error}", file=sys.stderr)
        return 1
    tls = None
    if tls_cert and tls_key:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(tls_cert, tls_key)
    scheme = "wss" if tls else "ws"
    settings = Settings.from_mapping(os.environ)
    worker = f" worker[{os.getpid()}]" if listen_fd is not None else ""
    configure_logging(settings, TEXT_FORMAT.replace("%(name)s", f"%(name)s{worker}"))
    try:
        app = create_app(settings, workers)  # opens (creates, migrates) the usage ledger, reads PRICES_FILE
    except (OSError, sqlite3.Error, PricesError, ValueError) as error:
        print(f"realtime-gateway: cannot start: {error}", file=sys.stderr)
        return 2
    if listen_fd is None:
        print(
            f"realtime-gateway on {scheme}://{host}:{port}/v1/realtime "
            f"(default provider: {settings.default_provider}); "
            f"try: realtime-gateway chat --url {scheme}://{host}:{port}/v1/realtime",
            file=sys.stderr,
            flush=True,
        )
    logging.getLogger("realtime_gateway").info("running on %s", running_on())
    # SIGTERM (or Ctrl-C): stop listening, tell every client and close every session
    # (server.py's on_shutdown), then exit, all within SHUTDOWN_TIMEOUT_SECONDS.
    _, handlers_timeout = shutdown_budget(settings)
    listener = None
    if listen_fd is not None:
        from .supervisor import exit_with_parent

        listener = socket.socket(fileno=listen_fd)
        parent = os.getppid()

        async def watch_parent(app: web.Application) -> AsyncIterator[None]:
            watch = asyncio.ensure_future(exit_with_parent(parent))
            yield
            watch.cancel()

        app.cleanup_ctx.append(watch_parent)
    _freeze_startup_objects()
    web.run_app(
        app,
        host=None if listener else host,
        port=None if listener else port,
        sock=listener,
        ssl_context=tls,
        print=None,
        access_log=None,
        shutdown_timeout=handlers_timeout,
        loop=_event_loop(),
    )
    logging.getLogger("realtime_gateway").info("gateway stopped")
    return 0


# The libraries the standalone server runs on (uvloop only where it is installed).
LIBRARIES = ("aiohttp", "websockets", "pydantic", "pydantic-core", "uvloop", "prometheus-client")


def running_on() -> str:
    """This gateway's version and those of Python and its libraries, for the start-up log line."""
    parts = [f"Python {platform.python_version()}"]
    for name in ("realtime-gateway", *LIBRARIES):
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:  # not installed (run from a source tree)
            continue
    return ", ".join(parts)


def _freeze_startup_objects() -> None:
    """Take what start-up built (modules, event schemas, the app) out of the cyclic GC's view.

    A full collection stops the relay for as long as it takes to walk every tracked object: with
    800 sessions streaming, 30-80 ms, which every frame in flight waits for. Start-up leaves ~55,000
    objects that live as long as the process; frozen, they are never walked again, which about
    halves those pauses (sessions' own objects, ~100 each, are still collected as usual).
    """
    gc.collect()
    gc.freeze()


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (about a third of the relay's CPU is the event loop itself)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    raise SystemExit(main())
