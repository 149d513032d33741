"""``realtime-gateway``: run the gateway (``serve``), talk to one from a terminal (``chat``), mint a
gateway token with GATEWAY_SECRET (``token``), or sum up the usage ledger (``usage``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sqlite3
import ssl
import sys
import time

from shared.config import PROVIDER_NAMES, Settings
from shared.logs import configure_logging
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

    chat = commands.add_parser("chat", help="a terminal client: type a line, read the streamed reply")
    chat.add_argument("--url", default="ws://127.0.0.1:8080/v1/realtime")
    chat.add_argument("--provider", default="simulator", help="openai, azure or simulator (default)")
    chat.add_argument("--model", default=None)
    chat.add_argument("--api-key", default=None, help="sent as a bearer token (default: none)")
    chat.add_argument("--audio", action="store_true", help="ask for spoken replies (shows transcripts)")
    chat.add_argument("--message", "-m", action="append", help="send this instead of reading stdin")

    token = commands.add_parser(
        "token", help="print a gateway token signed with GATEWAY_SECRET (from the environment)"
    )
    token.add_argument("--subject", required=True, help="who the token is for (logged, never the token)")
    token.add_argument("--ttl", type=int, default=None, help="seconds (default TOKEN_DEFAULT_TTL_SECONDS)")
    token.add_argument(
        "--provider",
        action="append",
        default=[],
        choices=PROVIDER_NAMES,
        help="allow only this provider (repeatable; default: any)",
    )
    token.add_argument(
        "--model", action="append", default=[], help="allow only this model (repeatable; default: any)"
    )
    token.add_argument("--max-session-seconds", type=int, default=None, help="end sessions after this long")
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
        return _token(parser, args)
    if args.command == "usage":
        return _usage(parser, args)
    if args.command == "serve":
        if bool(args.tls_cert) != bool(args.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        return _serve(args.host, args.port, args.tls_cert, args.tls_key)
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


def _serve(host: str, port: int, tls_cert: str | None = None, tls_key: str | None = None) -> int:
    from aiohttp import web

    from .server import create_app, shutdown_budget

    tls = None
    if tls_cert and tls_key:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(tls_cert, tls_key)
    scheme = "wss" if tls else "ws"
    settings = Settings.from_mapping(os.environ)
    configure_logging(settings)
    try:
        app = create_app(settings)  # opens (creates, migrates) the usage ledger, reads PRICES_FILE
    except (OSError, sqlite3.Error, PricesError, ValueError) as error:
        print(f"realtime-gateway: cannot start: {error}", file=sys.stderr)
        return 2
    print(
        f"realtime-gateway on {scheme}://{host}:{port}/v1/realtime "
        f"(default provider: {settings.default_provider}); "
        f"try: realtime-gateway chat --url {scheme}://{host}:{port}/v1/realtime",
        file=sys.stderr,
        flush=True,
    )
    # SIGTERM (or Ctrl-C): stop listening, tell every client and close every session
    # (server.py's on_shutdown), then exit, all within SHUTDOWN_TIMEOUT_SECONDS.
    _, handlers_timeout = shutdown_budget(settings)
    _freeze_startup_objects()
    web.run_app(
        app,
        host=host,
        port=port,
        ssl_context=tls,
        print=None,
        access_log=None,
        shutdown_timeout=handlers_timeout,
        loop=_event_loop(),
    )
    logging.getLogger("realtime_gateway").info("gateway stopped")
    return 0


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
