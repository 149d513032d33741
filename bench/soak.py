"""Soak: 10,000 session open/close cycles through the gateway; its descriptors, threads and RSS must
end where they started (``make soak``, writes ``bench/SOAK.md``).

Each cycle opens a session (the gateway opens its provider socket), waits for ``session.created``,
sends one event and waits for the upstream's answer, then closes. CONCURRENCY cycles run at once.
The gateway is sampled after a warm-up and after each quarter of the cycles. Both runtimes are
soaked: the standalone server, then the Worker bundle on the local Pyodide host (skipped, and said
so, when the host's packages are not installed: ``make worker-deps``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
import urllib.request
from pathlib import Path

import aiohttp

from .common import raise_fd_limit
from .servers import (
    ROOT,
    Unavailable,
    build_worker_bundle,
    snapshot_gateway,
    start_gateway,
    start_upstream,
    start_worker,
)

CYCLES = 10_000
WARM_UP = 500
CONCURRENCY = 50
PING = json.dumps({"type": "input_audio_buffer.commit", "bench": "ping", "seq": 0})


ADMIN_KEY = "soak-admin-key"  # lets the soak read GET /debug/stats


def sample(pid: int, port: int) -> dict[str, float | None]:
    """Descriptors, threads and RSS (MiB) of process ``pid``; open sessions and asyncio tasks as
    the gateway on ``port`` reports them (``/debug/stats``; the Worker has no asyncio tasks)."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/debug/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        stats = json.load(answer)
    return {
        "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
        "threads": int(fields["Threads"]),
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
        "sessions": stats["sessions_open"],
        "tasks": stats.get("asyncio_tasks"),
    }


async def cycles(url: str, count: int) -> int:
    """``count`` open/ping/close cycles, CONCURRENCY at once; how many failed."""
    failures = 0
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(http: aiohttp.ClientSession) -> None:
        nonlocal failures
        async with gate:
            try:
                async with http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as socket:
                    created = json.loads((await socket.receive(timeout=10)).data)
                    assert created["type"] == "session.created", created
                    await socket.send_str(PING)
                    pong = json.loads((await socket.receive(timeout=10)).data)
                    assert pong["type"] == "bench.pong", pong
            except (AssertionError, aiohttp.ClientError, TimeoutError, TypeError):
                failures += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(one(http) for _ in range(count)))
    return failures


RUNTIMES = {
    "standalone": "the standalone server (`realtime-gateway serve`)",
    "worker": "the Worker bundle on the local Pyodide host (`tests/worker_host/host.mjs`, Node); "
    "its RSS holds the WebAssembly heap, which grows and never shrinks",
}


def run(total: int, runtime: str, revision: dict[str, str]) -> str:
    upstream = start_upstream(f"soak-upstream-{runtime}")
    try:
        if runtime == "worker":
            build_worker_bundle()
            gateway = start_worker(upstream, "soak-worker", {"GATEWAY_ADMIN_KEY": ADMIN_KEY}).server
        else:
            gateway = start_gateway(upstream, "soak-gateway", {"GATEWAY_ADMIN_KEY": ADMIN_KEY}).server
    except Unavailable as why:
        upstream.stop()
        return f"## {runtime}\n\nNot run: {why}.\n"
    url = gateway.url()
    rows = []
    started = time.monotonic()
    try:
        failed = asyncio.run(cycles(url, WARM_UP))
        time.sleep(1)
        rows.append(("after warm-up", WARM_UP, failed, sample(gateway.pid, gateway.port)))
        done = 0
        for _ in range(4):
            batch = total // 4
            failed = asyncio.run(cycles(url, batch))
            done += batch
            time.sleep(1)  # let closing handshakes finish
            rows.append((f"after {done} cycles", batch, failed, sample(gateway.pid, gateway.port)))
            print(f"soak {runtime}: {done}/{total} cycles, {failed} failed, {rows[-1][3]}", flush=True)
    finally:
        gateway.stop()
        upstream.stop()
    seconds = time.monotonic() - started
    first, last = rows[0][3], rows[-1][3]
    lines = [
        f"## {runtime}",
        "",
        f"{RUNTIMES[runtime]}: {total} cycles after {WARM_UP} to warm up, {CONCURRENCY} at once, "
        f"{seconds:.0f} s, commit {revision['commit']} (uncommitted changes: {revision['uncommitted']}).",
        "",
        "| when | cycles | failed | open sessions | asyncio tasks | fds | threads | RSS |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {when} | {count} | {failed} | {s['sessions']} | {_or_na(s['tasks'])} | {s['fds']} "
            f"| {s['threads']} | {s['rss_mib']:.1f} MiB |"
            for when, count, failed, s in rows
        ),
        "",
        f"From warm-up to the end: open sessions {first['sessions']} -> {last['sessions']}, asyncio tasks "
        f"{_or_na(first['tasks'])} -> {_or_na(last['tasks'])}, fds {first['fds']} -> {last['fds']}, "
        f"threads {first['threads']} -> {last['threads']}, RSS {first['rss_mib']:.1f} -> "
        f"{last['rss_mib']:.1f} MiB ({last['rss_mib'] - first['rss_mib']:+.1f} MiB).",
        "",
    ]
    return "\n".join(lines)


def _or_na(value: object) -> str:
    return "n/a" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--cycles", type=int, default=CYCLES)
    parser.add_argument("--runtimes", default="standalone,worker", help="which runtimes to soak")
    args = parser.parse_args()
    raise_fd_limit()
    revision = snapshot_gateway()  # the gateway runs from a copy of the current tree, as in make bench
    header = [
        "# Soak: session open/close cycles",
        "",
        "Written by `make soak` (`bench/soak.py`); rerun it rather than editing this file.",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, "
        f"Python {platform.python_version()}",
        "- a cycle: open a session through the gateway (which opens its upstream socket), wait for "
        "`session.created`, send an event, wait for the upstream's answer, close",
        "",
    ]
    sections = [run(args.cycles, runtime.strip(), revision) for runtime in args.runtimes.split(",")]
    report = "\n".join(header) + "\n".join(sections)
    (ROOT / "bench" / "SOAK.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
