"""The client compatibility table: which realtime clients work through the gateway, on which runtime.

``pytest tests/clients tests/e2e/test_openai_sdk.py`` (or all of ``pytest``) records every cell (client
x protocol x runtime) to ``build/compat.json`` (the plugin ``tests/clients/compat_plugin.py`` calls
:func:`record`); ``python tests/clients/compat_table.py`` renders that file as markdown into README.md
between the ``<!-- compat:start -->`` and ``<!-- compat:end -->`` markers (``--print`` writes it to
stdout instead). Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "build" / "compat.json"
README = ROOT / "README.md"
START, END = "<!-- compat:start -->", "<!-- compat:end -->"

PROTOCOLS = ("ga", "beta")
RUNTIMES = ("standalone", "worker")


@dataclass(frozen=True)
class Client:
    label: str
    package: str  # "pypi:<name>", "npm:<name>" or "deb:<name>": where its version is read
    pointed_by: str  # how it is pointed at the gateway
    key_form: str  # how it sends the key


_PYTHON_SDK_POINTED_BY = (
    '`{cls}(websocket_base_url="ws://…/v1")`; `client.realtime.connect(model=…)` (beta: '
    "`client.beta.realtime.connect`) makes it `ws://…/v1/realtime?model=…` (add "
    '`extra_query={{"provider": …}}` for another provider than the default)'
)

CLIENTS: dict[str, Client] = {
    "openai-python-async": Client(
        "`openai` (PyPI) `AsyncOpenAI`",
        "pypi:openai",
        _PYTHON_SDK_POINTED_BY.format(cls="AsyncOpenAI"),
        "`Authorization: Bearer` (beta: also `OpenAI-Beta: realtime=v1`)",
    ),
    "openai-python-sync": Client(
        "`openai` (PyPI) `OpenAI` (sync)",
        "pypi:openai",
        _PYTHON_SDK_POINTED_BY.format(cls="OpenAI"),
        "`Authorization: Bearer` (beta: also `OpenAI-Beta: realtime=v1`)",
    ),
    "openai-agents": Client(
        "`openai-agents` (PyPI) `RealtimeRunner`",
        "pypi:openai-agents",
        '`runner.run(model_config={"url": "ws://…/v1/realtime?provider=…&model=…", "api_key": …})`',
        "`Authorization: Bearer`",
    ),
    "openai-npm-ws": Client(
        "`openai` (npm) `OpenAIRealtimeWS`",
        "npm:openai",
        "`new OpenAI({ baseURL: 'https://…/v1?provider=…' })`; the SDK makes it "
        "`wss://…/v1/realtime?provider=…&model=…`",
        "`Authorization: Bearer` (beta: also `OpenAI-Beta: realtime=v1`)",
    ),
    "openai-npm-websocket": Client(
        "`openai` (npm) `OpenAIRealtimeWebSocket` (Node 22's `WebSocket`)",
        "npm:openai",
        "as `OpenAIRealtimeWS`",
        "subprotocol `openai-insecure-api-key.<key>` (beta: also `openai-beta.realtime-v1`)",
    ),
    "agents-realtime": Client(
        "`@openai/agents-realtime` (npm) `RealtimeSession`",
        "npm:@openai/agents-realtime",
        "`session.connect({ apiKey, url: 'ws://…/v1/realtime?provider=…&model=…' })`",
        "`Authorization: Bearer` (Node; in a browser it uses the subprotocol)",
    ),
    "chromium": Client(
        "Chromium (headless): a page's own `WebSocket`",
        "deb:chromium",
        "`new WebSocket('ws://…/v1/realtime?provider=…&model=…', protocols)`",
        "subprotocols `realtime`, `openai-insecure-api-key.<key>` (beta: also `openai-beta.realtime-v1`)",
    ),
}

_TLS_ONLY = (
    "the npm SDK only opens `wss://` URLs for a custom `baseURL`, and the local Worker host serves "
    "`ws://` only (a deployed Worker is `wss://` behind Cloudflare's TLS)"
)
_GA_ONLY = "the SDK speaks only the GA interface: it has no beta mode"
NOT_APPLICABLE: dict[tuple[str, str, str], str] = {
    **{("openai-agents", "beta", runtime): _GA_ONLY for runtime in RUNTIMES},
    **{("agents-realtime", "beta", runtime): _GA_ONLY for runtime in RUNTIMES},
    **{
        (client, protocol, "worker"): _TLS_ONLY
        for client in ("openai-npm-ws", "openai-npm-websocket")
        for protocol in PROTOCOLS
    },
}


# -- recording (called by the pytest plugin) ---------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One pytest report of a test that belongs to a cell."""

    nodeid: str
    when: str  # setup, call, teardown
    outcome: str  # passed, failed, skipped
    reason: str = ""


def cell_outcome(reports: Iterable[Report]) -> tuple[str, str, int]:
    """``pass``, ``fail`` or ``skip`` for a cell's reports, a detail, and how many tests it had."""
    reports = list(reports)
    tests = len({report.nodeid for report in reports})
    failed = sorted({report.nodeid.split("::")[-1] for report in reports if report.outcome == "failed"})
    if failed:
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        return "fail", "failed: " + ", ".join(f"`{name}`" for name in failed[:3]) + more, tests
    if any(report.outcome == "passed" and report.when == "call" for report in reports):
        return "pass", "", tests
    reasons = sorted({report.reason for report in reports if report.outcome == "skipped"})
    return "skip", "; ".join(reasons), tests


def record(reports: dict[tuple[str, str, str], list[Report]], seconds: float) -> dict[str, Any]:
    """The content of ``build/compat.json`` for a run: every cell, run or not."""
    cells = []
    for client in CLIENTS:
        for protocol in PROTOCOLS:
            for runtime in RUNTIMES:
                cell: dict[str, Any] = {"client": client, "protocol": protocol, "runtime": runtime}
                if (client, protocol, runtime) in NOT_APPLICABLE:
                    cell.update(outcome="n/a", detail=NOT_APPLICABLE[client, protocol, runtime], tests=0)
                elif (client, protocol, runtime) in reports:
                    outcome, detail, tests = cell_outcome(reports[client, protocol, runtime])
                    cell.update(outcome=outcome, detail=detail, tests=tests)
                else:
                    cell.update(outcome="not run", detail="", tests=0)
                cells.append(cell)
    return {
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "versions": versions(),
        "cells": cells,
    }


def versions() -> dict[str, str]:
    """The version of each client package on this machine ("" where it is not installed)."""
    import importlib.metadata
    import subprocess

    found: dict[str, str] = {}
    for client in CLIENTS.values():
        kind, _, name = client.package.partition(":")
        version = ""
        try:
            if kind == "pypi":
                version = importlib.metadata.version(name)
            elif kind == "npm":
                manifest = ROOT / "node_modules" / name / "package.json"
                version = json.loads(manifest.read_text())["version"]
            elif kind == "deb":
                answer = subprocess.run([name, "--version"], capture_output=True, text=True, timeout=10)
                version = answer.stdout.split()[1] if answer.returncode == 0 else ""
        except (OSError, ValueError, IndexError, KeyError, importlib.metadata.PackageNotFoundError):
            version = ""
        found[client.package] = version
    return found


# -- rendering ---------------------------------------------------------------------------------------

_MARKS = {"pass": "✅ pass", "fail": "❌ fail", "skip": "⏭ skipped", "not run": "not run"}


def render(results: dict[str, Any]) -> str:
    cells = {(cell["client"], cell["protocol"], cell["runtime"]): cell for cell in results["cells"]}
    notes: list[str] = []

    def mark(cell: dict[str, Any]) -> str:
        text = _MARKS.get(cell["outcome"], cell["outcome"])
        if cell["outcome"] in ("n/a", "fail", "skip") and cell["detail"]:
            if cell["detail"] not in notes:
                notes.append(cell["detail"])
            text += f" [{notes.index(cell['detail']) + 1}]"
        return text

    columns = [(protocol, runtime) for protocol in PROTOCOLS for runtime in RUNTIMES]
    runtime_names = {"standalone": "standalone", "worker": "Worker"}
    lines = [
        "| client | version | "
        + " | ".join(f"{p.upper() if p == 'ga' else p} · {runtime_names[r]}" for p, r in columns)
        + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for name, client in CLIENTS.items():
        version = results.get("versions", {}).get(client.package, "")
        row = [client.label, version or "?"] + [mark(cells[name, p, r]) for p, r in columns]
        lines.append("| " + " | ".join(row) + " |")
    body = [
        "Each cell is a real client, connected through the gateway (standalone: `realtime-gateway serve`, "
        "over `wss://` with a test certificate where the client insists on TLS; Worker: the Worker bundle on "
        "the local host) to OpenAI as it is now: a fake provider (`tests/support/fake_upstream.py`) that "
        "speaks only the GA interface and is as strict as OpenAI's endpoint (it refuses the beta header "
        "and every beta field name with OpenAI's own errors). The client holds a text turn and an audio "
        "turn (PCM16 speech appended, the provider's server VAD commits it and starts the reply, spoken "
        "reply out) and sees the events it expects; a cell fails if the provider sent any `error` (a "
        "refusal of anything the client or the gateway's translation sent), if a beta header or field "
        "reached it, or if the client's key did not reach it as `Authorization: Bearer`. GA and beta are "
        "the interface the client speaks; the gateway translates beta to and from GA. The same turns "
        "against `provider=simulator` (real speech back) are run too, as separate tests outside the "
        "cells. Tests: `tests/clients/`, `tests/e2e/test_openai_sdk.py`.",
        "",
        *lines,
        "",
        *(f"- [{number}] {note}." for number, note in enumerate(notes, 1)),
        "",
        "| client | pointed at the gateway by | key sent as |",
        "|---|---|---|",
        *(f"| {client.label} | {client.pointed_by} | {client.key_form} |" for client in CLIENTS.values()),
        "",
        f"Generated by `python tests/clients/compat_table.py` from `build/compat.json`, written by "
        f"`pytest tests/clients tests/e2e/test_openai_sdk.py` ({results['generated_at'][:10]}, "
        f"{results['seconds']:.0f} s).",
    ]
    return "\n".join(body)


def replace_between_markers(text: str, table: str) -> str:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md lacks the markers {START} … {END}")
    return text[: start + len(START)] + "\n" + table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--print", action="store_true", help="print the table instead of writing README")
    args = parser.parse_args(argv)
    if not args.results.exists():
        print(
            f"{args.results} is missing: run `pytest tests/clients tests/e2e/test_openai_sdk.py` first",
            file=sys.stderr,
        )
        return 2
    table = render(json.loads(args.results.read_text()))
    if args.print:
        print(table)
        return 0
    current = args.readme.read_text()
    updated = replace_between_markers(current, table)
    if updated != current:
        args.readme.write_text(updated)
    print(f"{args.readme}: client compatibility table from {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
