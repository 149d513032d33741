"""``bench/RESULTS.md`` and ``bench/latency.png`` from a run's results (``bench/out/results.json``).

``python -m bench.report`` rewrites both from the last run's raw data, into bench/out.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import median, percentile

PEER_NAMES = ("portkey", "litellm")
LABELS = {
    "direct": "direct",
    "direct_ping_first": "direct (ping first)",
    "gateway": "gateway",
    "portkey": "Portkey",
    "litellm": "LiteLLM",
    "worker": "Worker",
    "floor": "TCP forwarder",
    "workers": "gateway, serve --workers",
}
COLOURS = {
    "direct": "tab:blue",
    "gateway": "tab:orange",
    "portkey": "tab:green",
    "litellm": "tab:red",
    "floor": "tab:gray",
}


def _limits() -> Any:
    from . import run

    return run


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return "n/a"
    return f"{a / b:.2f}x"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _us(value: float) -> str:
    return f"{value:.0f} µs"


def _ms(value_us: float) -> str:
    return f"{value_us / 1000:.2f} ms"


class _Row:
    """One row of the main table: a value per path (None: not measured), formatted."""

    def __init__(
        self, results: dict[str, Any], values: dict[str, float | None], fmt: Callable[[float], str]
    ) -> None:
        self.results = results
        self.values = values
        self.fmt = fmt

    def cell(self, name: str, note: str = "") -> str:
        value = self.values.get(name)
        if value is not None and not math.isnan(value):
            return self.fmt(value) + note
        peer = self.results.get("peers", {}).get(name)
        if peer is not None and peer["status"] != "ok":
            return "skipped¹"
        return "not measured¹"


class _KRow(_Row):
    """Figure 3's row: the gateway's cell carries its own note (the other cells get theirs from ``row``)."""

    def __init__(
        self, results: dict[str, Any], values: dict[str, float | None], notes: dict[str, str]
    ) -> None:
        super().__init__(results, values, lambda v: f"{v:.0f}")
        self.notes = notes

    def cell(self, name: str, note: str = "") -> str:
        if name == "gateway":
            note = self.notes.get(name, "")
        return super().cell(name, note)


def _best_peer(ratios: dict[str, float | None], higher_is_better: bool, suffix: str = "x") -> str:
    usable = {name: r for name, r in ratios.items() if r is not None and not math.isnan(r)}
    if not usable:
        return "n/a"
    best = (max if higher_is_better else min)(usable.values())
    names = ", ".join(LABELS[name] for name, r in usable.items() if f"{r:.2f}" == f"{best:.2f}")
    return f"{best:.2f}{suffix} ({names})"


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def write_markdown(results: dict[str, Any], path: Path) -> None:
    limits = _limits()
    machine = results["machine"]
    rtt, conn, audio, memory = results["rtt"], results["connect"], results["audio"], results["memory"]
    cores = int(machine["nproc"])
    versions = results.get("versions", {})
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/run.py`); rerun it rather than editing this file.",
        "",
        f"- date: {results['date']}",
        f"- machine: nproc {machine['nproc']}, {machine['cpu']}, {machine['memory']} RAM, "
        f"Linux {machine['kernel']}; load average before the run {machine['load_before']}",
        f"- software: Python {machine['python']}, aiohttp {machine['aiohttp']} (the gateway's HTTP; the "
        f"clients of figures 1, 2 and 4), websockets {machine.get('websockets', '?')} (the gateway's "
        f"frames; the upstream and figure 3's clients, on uvloop {machine.get('uvloop', '?')}); peers: "
        f"{versions.get('portkey', '?')} on Node {versions.get('node', '?')}, "
        f"{versions.get('litellm', '?')} on {versions.get('litellm_python', '?')}",
        f"- command: `{results['command']}` (took {results['duration_s']:.0f} s)",
        f"- gateway code: commit {results['gateway_code']['commit']}, uncommitted changes in `shared/` "
        f"or `standalone/`: {results['gateway_code']['uncommitted']} (their `*.py` sha256 "
        f"{results['gateway_code']['sources_sha256']}); copied when the run started, so edits made "
        "during the run are not measured",
        "",
        "Baseline (**direct**): the client talking to the benchmark upstream (`bench/upstream.py`) itself. "
        "The upstream and figure 3's clients are a lean load generator, so that they leave the cores to "
        "the relay they measure: uvloop, asyncio protocols over websockets' sans-I/O protocol, and the "
        "audio frames pre-built and read as bytes (`bench/wire.py`); the clients of figures 1, 2 and 4 "
        "use aiohttp. "
        "Subjects, each a relay between the same client code and that same upstream: the **gateway** "
        "(a `realtime-gateway serve` process whose `OPENAI_REALTIME_URL` points at the upstream) and, "
        "side by side in the same run, its peers **Portkey** and **LiteLLM** (how each is set up: "
        "[The peers](#the-peers)). Upstream, relays and clients are separate processes on 127.0.0.1 "
        f"sharing the machine's {cores} cores. Each figure is a median over repeated rounds; within "
        "a figure the paths take turns in the same run. A ratio is a subject's figure over the direct "
        "path's; *best peer* is the better of the two peers' ratios. The Worker entry on the local "
        "Pyodide host has a section of its own ([5](#5-the-worker-on-the-local-pyodide-host)).",
        "",
        "| figure | gateway | direct | Portkey | LiteLLM | gateway/direct | best peer/direct "
        "| target (gateway) | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def stat(figure: dict[str, Any], key: str) -> dict[str, float | None]:
        return {
            name: figure[name][key] if name in figure else None for name in ("direct", "gateway", *PEER_NAMES)
        }

    def row(
        label: str, r: _Row, direct_cell: str, ratio: str, best: str, target: str, met: str, notes=None
    ) -> str:
        notes = notes or {}
        cells = [
            r.cell("gateway"),
            direct_cell,
            r.cell("portkey", notes.get("portkey", "")),
            r.cell("litellm"),
        ]
        return f"| {label} | " + " | ".join(cells) + f" | {ratio} | {best} | {target} | {met} |"

    # Figure 1.
    d = rtt["direct"]
    for key, label, target_ratio in (
        ("median_us", "1. small-event round trip, median", None),
        ("p99_us", "1. small-event round trip, p99", limits.TARGET_P99_RATIO),
    ):
        values = stat(rtt, key)
        r = _Row(results, values, _us)
        g = values["gateway"]
        target = f"≤ {target_ratio:g}x" if target_ratio else ""
        met = _met(g <= target_ratio * d[key]) if target_ratio and g is not None else ""
        best = _best_peer({n: _div(values[n], d[key]) for n in PEER_NAMES}, higher_is_better=False)
        lines.append(row(label, r, _us(d[key]), _ratio(g, d[key]), best, target, met))
    added = {name: rtt[name]["added_median_us"] if name in rtt else None for name in ("gateway", *PEER_NAMES)}
    r = _Row(results, added, lambda v: f"+{v:.0f} µs")
    g = added["gateway"]
    best = _best_peer({n: _div(added[n], d["median_us"]) for n in PEER_NAMES}, False, "x of direct")
    lines.append(
        row(
            "1. added median round trip (subject - direct)",
            r,
            _us(d["median_us"]),
            f"{g / d['median_us']:.2f}x of direct",
            best,
            f"≤ {limits.TARGET_ADDED_MEDIAN_RATIO:g}x",
            _met(g <= limits.TARGET_ADDED_MEDIAN_RATIO * d["median_us"]),
        )
    )
    # Figure 2.
    values = stat(conn, "median_us")
    ping_first = "direct_ping_first" in conn
    direct_cell = _ms(conn["direct"]["median_us"])
    notes = {}
    if ping_first:
        direct_cell += f" ({_ms(conn['direct_ping_first']['median_us'])} ping first²)"
        notes = {n: "²" for n in PEER_NAMES if n in conn and conn[n]["baseline"] == "direct_ping_first"}
    ratios = {
        n: _div(values[n], conn[conn[n]["baseline"]]["median_us"]) if n in conn else None for n in PEER_NAMES
    }
    g, dm = values["gateway"], conn["direct"]["median_us"]
    lines.append(
        row(
            "2. TCP connect → `session.created`, median",
            _Row(results, values, _ms),
            direct_cell,
            _ratio(g, dm),
            _best_peer(ratios, False),
            f"≤ {limits.TARGET_CONNECT_RATIO:g}x",
            _met(g <= limits.TARGET_CONNECT_RATIO * dm),
            notes,
        )
    )
    # Figure 3.
    largest = audio["largest_passing"]
    kd = audio["largest_direct_ok"]
    values_k = {name: float(largest[name]) if name in largest else None for name in ("gateway", *PEER_NAMES)}
    tried = max(level["sessions"] for level in audio["levels"])
    cut = audio.get("cut_by_time_at")
    # A subject that passed the last level tried before the time budget cut the ramp: a lower bound.
    still_passing = {n for n, k in largest.items() if cut and k == tried}
    k_notes = {n: f" (≥; ramp cut before {cut})" for n in still_passing}
    lines.append(
        row(
            f"3. concurrent audio sessions: largest K with p99 added latency < "
            f"{limits.AUDIO_ADDED_P99_LIMIT_MS:g} ms and nothing lost (ramp tried up to {tried})",
            _KRow(results, values_k, k_notes),
            f"{kd}{' (≥)' if cut and kd == tried else ''} (direct p99 - p50 < "
            f"{limits.AUDIO_ADDED_P99_LIMIT_MS:g} ms, intact)",
            _ratio(values_k["gateway"], kd),
            _best_peer({n: _div(values_k[n], kd) for n in PEER_NAMES}, True),
            f"≥ {limits.TARGET_SESSIONS}",
            _met(largest["gateway"] >= limits.TARGET_SESSIONS),
            {n: k_notes[n] for n in PEER_NAMES if n in k_notes},
        )
    )
    if "workers" in largest:
        n, k1, kw = audio.get("workers", 2), largest["gateway"], largest["workers"]
        lines.append(
            f"| 3. the same through `serve --workers {n}` (one process per core, SO_REUSEPORT) "
            f"| {kw} | {kd} | | | {_ratio(float(kw), kd)} | n/a "
            f"| ≥ {limits.TARGET_WORKERS_RATIO:g}x one worker ({limits.TARGET_WORKERS_RATIO * k1:.0f}) "
            f"| {_met(k1 > 0 and kw >= limits.TARGET_WORKERS_RATIO * k1)} |"
        )
    common = _common_level(audio)
    per_frame = {
        name: common["subjects"][name]["via"]["cpu_us_per_frame"] if name in common["subjects"] else None
        for name in ("gateway", *PEER_NAMES)
    }
    upstream_frame = common["direct"]["upstream_us_per_frame"]
    lines.append(
        row(
            f"3. relay CPU per relayed audio frame (at K={common['sessions']}, the largest K every "
            "subject ran; direct: the upstream, which handles a frame once where a relay handles it "
            "twice, and reads it by its bytes, with no JSON parse)",
            _Row(results, per_frame, _us),
            _us(upstream_frame),
            _ratio(per_frame["gateway"], upstream_frame),
            _best_peer({n: _div(per_frame[n], upstream_frame) for n in PEER_NAMES}, False),
            "",
            "",
        )
    )
    # Figure 4.
    kib = {name: memory.get(f"{name}_kib") for name in ("gateway", *PEER_NAMES)}
    dk = memory["direct_kib"]
    lines.append(
        row(
            f"4. RSS per open idle session ({memory['sessions']} sessions; the process tree)",
            _Row(results, kib, lambda v: f"{v:.1f} KiB"),
            f"{dk:.1f} KiB (the upstream: websockets' sans-I/O protocol on uvloop)",
            _ratio(kib["gateway"], dk),
            _best_peer({n: _div(kib[n], dk) for n in PEER_NAMES}, False),
            f"≤ {limits.TARGET_RSS_KIB} KiB",
            _met(kib["gateway"] is not None and kib["gateway"] <= limits.TARGET_RSS_KIB),
        )
    )
    lines.append("")
    if "floor" in rtt:
        floor = rtt["floor"]
        lines += [
            f"The floor of figure 1: a relay process that only forwards TCP bytes (`bench/forwarder.py`, "
            f"uvloop, no WebSocket parsing) adds +{floor['added_median_us']:.0f} µs "
            f"({floor['added_median_us'] / d['median_us']:.2f}x of direct) in the same run: the "
            "loopback, the scheduler and an event-loop hop each way on this machine. The gateway's own "
            f"work is the rest: +{rtt['gateway']['added_median_us'] - floor['added_median_us']:.0f} µs.",
            "",
        ]
    peak = _peak_at_largest(audio, "gateway")
    if peak is not None:
        sessions, mib = peak
        lines += [f"Figure 3: at K={sessions}, the gateway's peak RSS while streaming was {mib:.0f} MiB.", ""]
    lines += _footnotes(results, ping_first)
    lines += _peers_section(results)
    lines += _rtt_section(rtt)
    lines += _connect_section(conn)
    lines += _audio_section(audio, cores)
    lines += _memory_section(memory)
    lines += _worker_section(results.get("worker"), cores)
    path.write_text("\n".join(lines))


def _common_level(audio: dict[str, Any]) -> dict[str, Any]:
    """The largest level of the ramp with a CPU-per-frame figure for every subject (else the first)."""

    def complete(level: dict[str, Any]) -> bool:
        entries = [level["subjects"].get(name) for name in audio["subjects"]]
        return all(e is not None and not math.isnan(e["via"]["cpu_us_per_frame"]) for e in entries)

    return next((lv for lv in reversed(audio["levels"]) if complete(lv)), audio["levels"][0])


def _footnotes(results: dict[str, Any], ping_first: bool) -> list[str]:
    notes = []
    peers = results.get("peers", {})
    missing = []
    for name in PEER_NAMES:
        peer = peers.get(name)
        if peer is None:
            continue
        if peer["status"] != "ok":
            missing.append(f"{LABELS[name]} was skipped: {peer['reason']}.")
        failures = list(peer.get("failures", []))
        if peer["status"] == "ok" and name in results["memory"].get("failures", {}):
            failures.append(f"figure 4 ({results['memory']['failures'][name]})")
        if failures:
            missing.append(f"{LABELS[name]} was not measured in {', '.join(failures)}.")
    if missing:
        notes.append("¹ " + " ".join(missing))
    if ping_first:
        notes.append(
            "² Portkey never delivers `session.created`: it relays an upstream event only once the "
            "client's socket is attached, after the handshake, and the upstream sends `session.created` "
            "before that, so it is dropped. Its figure 2 is therefore TCP connect → the pong of a "
            "ping the client sends as soon as the handshake completes (the first event a client can "
            "get through it), and its ratio is against the direct path timed the same way in the same "
            "run (the *ping first* figure in the direct column)."
        )
    return [*notes, ""] if notes else []


def _peers_section(results: dict[str, Any]) -> list[str]:
    peers = results.get("peers", {})
    versions = results.get("versions", {})

    def status(name: str) -> str:
        peer = peers.get(name, {"status": "skipped", "reason": "not run"})
        if peer["status"] == "ok":
            return f"measured (ready {peer.get('start_seconds', float('nan')):.1f} s after start)"
        return f"**skipped**: {peer['reason']}"

    return [
        "## The peers",
        "",
        "Both are installed on demand into `bench/.cache/` (ignored by git) at pinned versions, "
        "started once for figures 1-3 and afresh for each round of figure 4, listen on 127.0.0.1 only, "
        "and are pointed at the same benchmark upstream as the gateway. A peer that cannot be installed "
        "or started, or whose first sessions fail, is skipped and the reason is given here.",
        "",
        f"- **Portkey** ({versions.get('portkey', '?')}, `npm install --prefix bench/.cache/portkey`; "
        f"Node {versions.get('node', '?')}): {status('portkey')}. Started as `node --import "
        "bench/node_loopback.mjs .../build/start-server.js --port=P --headless` (its start script names "
        "no host; the preload makes it listen on 127.0.0.1). Its realtime route is `GET "
        "/v1/realtime?model=...`; it builds the upstream URL from the provider's base URL and endpoint. "
        "Provider `openai` always goes to api.openai.com (the `x-portkey-custom-host` header is not "
        "read by that route, and a `ws://` custom host is refused as invalid), so the client sends "
        '`x-portkey-provider: milvus` and `x-portkey-config: {"provider":"milvus","api_key":...,'
        '"custom_host":"http://127.0.0.1:P/v1/realtime?model=gpt-realtime"}`: the generic provider '
        "`milvus` uses the custom host as the whole URL (`http://` is what its validator accepts; its "
        "`ws` client opens it as a WebSocket; 127.0.0.1 is a default trusted host). Portkey drops "
        "upstream events sent before the client's socket is attached, so `session.created` never "
        "arrives: the clients open each Portkey session by sending a ping and waiting for its pong "
        "(figure 2: see ²). Portkey parses every upstream event as JSON (its realtime event logger) and "
        "relays the original text.",
        f"- **LiteLLM** ({versions.get('litellm', '?')} with the `proxy` extra, in its own venv "
        f"`bench/.cache/litellm-venv`, {versions.get('litellm_python', '?')}): {status('litellm')}. "
        "Started as `litellm --config bench/out/litellm.yaml --host 127.0.0.1 --port P` with "
        "`LITELLM_LOCAL_MODEL_COST_MAP=True` (offline: no cost-map fetch); the config has one model, "
        "`gpt-realtime` = `openai/gpt-realtime` with `api_base: http://127.0.0.1:<upstream port>` (it "
        "connects to `ws://.../v1/realtime?model=gpt-realtime`), and a `master_key`, which the clients "
        "send as their bearer token. Its realtime route is `/v1/realtime?model=gpt-realtime`. It parses "
        "every event in both directions (for its guardrails, logging and usage) and sends the "
        "provider's events to the client re-serialised (`json.dumps` spacing), so the clients fall "
        "back to a JSON parse for frames whose bytes differ from the benchmark's pre-built ones (the "
        "upstream does the same for client frames); that costs the harness, not LiteLLM, some CPU. "
        "Other settings are LiteLLM's defaults.",
        "",
    ]


def _split(cpu: dict[str, float], name: str) -> str:
    if name not in cpu:
        return "n/a"
    return f"{cpu[name]:.0f} µs (user {cpu[name + '_user']:.0f}, system {cpu[name + '_system']:.0f})"


def _rtt_section(rtt: dict[str, Any]) -> list[str]:
    paths = rtt["paths"]
    subjects = paths[1:]
    cpu = "; ".join(f"{LABELS[s]} {_split(rtt['cpu'][s], s)}" for s in subjects)
    lines = [
        "## 1. Round trip of a small event",
        "",
        f"One connection per path, {rtt['n']} sequential pings per round after {rtt['warmup']} warm-up "
        f"pings, {rtt['rounds']} rounds; the paths take turns within each round, in an order rotated by "
        "one each round. Per-round median and p99, then the median over rounds; *added* is the median "
        "over rounds of (subject's round median - direct round median). The ping is "
        '`input_audio_buffer.commit` carrying the extra fields `"bench":"ping","seq":N` (a literal '
        '`"type":"bench.ping"` is answered by the gateway with `unknown_event_type` and not relayed); '
        'the upstream answers `{"type":"bench.pong","seq":N}`. Distributions: `bench/latency.png`.',
        "",
        "CPU per round trip of each relay's process tree while its own rounds ran (median over rounds; "
        f"/proc utime+stime, 10 ms ticks over each round; two frames relayed per ping): {cpu}; the "
        f"upstream {_split(rtt['cpu']['direct'], 'upstream')} per ping answered (direct). Processes "
        f"other than the benchmark's used {rtt['other_load_percent']:.0f}% of a core meanwhile.",
        "",
        "| round | " + " | ".join(f"{LABELS[p]} median / p99" for p in paths) + " |",
        "|---|" + "---|" * len(paths),
    ]
    for index in range(rtt["rounds"]):
        cells = [
            f"{rtt[p]['round_medians_us'][index]:.0f} / {rtt[p]['round_p99s_us'][index]:.0f} µs"
            for p in paths
        ]
        lines.append(f"| {index + 1} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _connect_section(conn: dict[str, Any]) -> list[str]:
    paths = conn["paths"]
    subjects = [p for p in paths if p in LABELS and not p.startswith("direct")]
    cpu = "; ".join(f"{LABELS[s]} {_split(conn['cpu'][s], s)}" for s in subjects)
    lines = [
        "## 2. Connect to `session.created`",
        "",
        f"{conn['rounds']} rounds x {conn['n']} sequential fresh connections per path (after 5 warm-up "
        "connections each; the paths take turns within a round, in an order rotated each round), "
        "timed from just before the client's `ws_connect` (which starts the TCP connect) to the "
        "arrival of `session.created`, or, for Portkey and *direct (ping first)*, to the pong of a "
        "ping sent as soon as the handshake completed (see ² above). The median and p99 are over all "
        f"connections of a path. CPU per connection (median over rounds): {cpu}; the upstream "
        f"{_split(conn['cpu']['direct'], 'upstream')} (direct). Processes other than the benchmark's "
        f"used {conn['other_load_percent']:.0f}% of a core meanwhile.",
        "",
        "| path | first event | median | p99 | round medians |",
        "|---|---|---|---|---|",
    ]
    for path in paths:
        first = conn[path].get("first_event", "pong" if path == "direct_ping_first" else "session.created")
        rounds = ", ".join(f"{v / 1000:.2f}" for v in conn[path]["round_medians_us"])
        lines.append(
            f"| {LABELS[path]} | {first} | {_ms(conn[path]['median_us'])} | {_ms(conn[path]['p99_us'])} "
            f"| {rounds} ms |"
        )
    lines.append("")
    return lines


def _audio_description(audio: dict[str, Any], cores: int) -> str:
    limits = _limits()
    return (
        "K sessions (over two client processes above K=100), each sending a 100 ms PCM16 24 kHz chunk "
        "(6,400 base64 characters) every 100 ms for "
        f"{audio['seconds']:g} s while the upstream streams a 100 ms `response.output_audio.delta` back "
        "every 100 ms; the sessions start at random offsets within the first 100 ms, so their frames "
        "spread over the period. Every frame carries its sequence number and its CLOCK_MONOTONIC send "
        "time; the receiver (the upstream for appends, the client for deltas) takes the one-way latency. "
        "Clients and upstream are `bench/wire.py`'s load generator: each session is an asyncio protocol "
        "on uvloop, sending on its own timer; a frame is sent as a pre-serialised template (pre-masked "
        "with a fixed key by the clients) with the stamp patched in, and read back by comparing its "
        "bytes with the template's and taking the stamp at its offset, or by websockets' protocol and "
        "a JSON parse when a relay changed its bytes. The first "
        "second is warm-up, the rest is cut into 3 rounds; p50 and p99 are medians over the rounds, both "
        "directions pooled. At each K the direct path is measured first, then each subject in turn "
        "(gateway, Portkey, LiteLLM), each with the same client code. **Added p99** = subject one-way "
        "p99 - direct one-way p50 at the same K: everything in the subject path's tail beyond the "
        "direct path's typical latency. A level passes when added p99 < "
        f"{limits.AUDIO_ADDED_P99_LIMIT_MS:g} ms, every session connected and ended with no frame lost, "
        "duplicated or reordered in either direction, and the clients kept their schedule (p99 of how "
        f"late their 100 ms timers fired < {limits.HARNESS_LAG_LIMIT_MS:g} ms; beyond that the offered "
        "load falls short of real time and latencies would be understated). A subject's figure is the "
        "largest K that passed with every smaller K passing too; it leaves the ramp after two failed "
        "levels in a row. CPU is utime+stime from /proc over the streaming period, in % of one core, of "
        "each process tree; 'benchmark processes' sums upstream, relays (idle ones included) and "
        "clients; 'machine busy' is the whole machine from /proc/stat, interrupt time (loopback TCP) "
        f"included (the machine has {cores * 100}%). 'Other processes' is CPU used meanwhile by "
        "processes that are not the benchmark's: other users of the machine. A level that fails while "
        f"they use over {limits.NOISY_NEIGHBOUR_PERCENT:g}% of a core is measured again, direct and "
        f"subject (up to {limits.MAX_ATTEMPTS} attempts, while the run is under "
        f"{limits.RETRY_BUDGET_SECONDS:g} s old) and the last attempt counts; before each measurement "
        "the run waits (up to 60 s) for the machine to be nearly idle."
    )


def _audio_table(audio: dict[str, Any], name: str, cores: int) -> list[str]:
    label = LABELS[name]
    lines = [
        f"| K | direct p50 / p99 | {label} p50 / p99 | added p99 | intact (direct, {label}) "
        f"| {label} CPU | {label} µs per frame (user + system) | {label} peak RSS | upstream CPU "
        "| benchmark processes CPU | machine busy | other processes CPU | client send lag p99 | pass |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in audio["levels"]:
        entry = level["subjects"].get(name)
        if entry is None:
            continue
        d, v = entry["direct"], entry["via"]
        cpu = v["cpu_percent"]
        lines.append(
            f"| {level['sessions']}{_attempts(entry)} "
            f"| {d['both']['p50_ms']:.2f} / {d['both']['p99_ms']:.2f} ms "
            f"| {v['both']['p50_ms']:.2f} / {v['both']['p99_ms']:.2f} ms | {v['added_p99_ms']:.2f} ms "
            f"| {_intact(d)}, {_intact(v)} | {cpu.get(name, float('nan')):.0f}% "
            f"| {v['cpu_us_per_frame']:.0f} ({_per_frame(v, 'cpu_user_s', name):.0f} + "
            f"{_per_frame(v, 'cpu_system_s', name):.0f}) | {_peak_rss(v, name)} "
            f"| {cpu.get('upstream', float('nan')):.0f}% "
            f"| {sum(cpu.values()):.0f}% | {v['machine_busy_percent'] * cores:.0f}% "
            f"| {v['other_load_percent']:.0f}% "
            f"| {v['send_lag_p99_ms']:.1f} ms "
            f"| {'yes' if entry['passed'] else '**no**: ' + ', '.join(entry['reasons'])} |"
        )
    return lines


def _peak_at_largest(audio: dict[str, Any], name: str) -> tuple[int, float] | None:
    """(K, peak RSS in MiB) of ``name`` at its largest passing K, when that was sampled."""
    largest = audio["largest_passing"].get(name)
    for level in audio["levels"]:
        entry = level["subjects"].get(name)
        if level["sessions"] == largest and entry is not None:
            peak = entry["via"].get("peak_rss_mib", {}).get(name)
            return None if peak is None else (largest, peak)
    return None


def _peak_rss(level: dict[str, Any], name: str) -> str:
    peak = level.get("peak_rss_mib", {}).get(name)
    return "n/a" if peak is None else f"{peak:.0f} MiB"


def _clients_us_per_frame(level: dict[str, Any]) -> float:
    """CPU µs the client processes spent per frame (each frame is sent or received by one client)."""
    spent = sum(seconds for name, seconds in level["cpu_s"].items() if name.startswith("client"))
    return 1e6 * spent / level["frames"] if level["frames"] else float("nan")


def _audio_section(audio: dict[str, Any], cores: int) -> list[str]:
    upstream_frame = median([lv["direct"]["upstream_us_per_frame"] for lv in audio["levels"]])
    clients_frame = median([_clients_us_per_frame(lv["direct"]) for lv in audio["levels"]])
    lines = [
        "## 3. Concurrent audio sessions",
        "",
        _audio_description(audio, cores)
        + " Reference for the µs per frame: the upstream, which handles each frame once (receive or "
        f"send) where a relay handles it twice (receive and send), spends {upstream_frame:.0f} µs per "
        f"frame in the direct runs, the clients {clients_frame:.0f} µs (medians over K).",
        "",
    ]
    if audio.get("cut_by_time_at"):
        lines += [
            f"The ramp stopped before K={audio['cut_by_time_at']}: the run was past its time budget "
            "(bench/run.py RAMP_DEADLINE_SECONDS).",
            "",
        ]
    for name in audio["subjects"]:
        largest = audio["largest_passing"][name]
        lines += [
            f"### {LABELS[name]} (largest passing K: {largest})",
            "",
            *_audio_table(audio, name, cores),
            "",
        ]
    return lines


def _memory_section(memory: dict[str, Any]) -> list[str]:
    names = [n for n in ("gateway", *PEER_NAMES) if memory.get(n)]
    lines = [
        "## 4. Memory per idle session",
        "",
        "Fresh processes per round: an upstream, then each relay in turn, each warmed with 50 sessions "
        f"opened and closed; then {memory['sessions']} sessions opened through it (each with its "
        "upstream connection) and left idle: (VmRSS of the relay's process tree with them open - "
        "VmRSS before) / sessions. The direct column is the same measurement on the upstream process, "
        "with the sessions opened directly against it.",
        "",
        "| round | "
        + " | ".join(f"{LABELS[n]} before → after, per session" for n in names)
        + " | upstream per session (direct) |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for index, direct in enumerate(memory["direct"]):
        cells = []
        for name in names:
            if index < len(memory[name]):
                m = memory[name][index]
                cells.append(
                    f"{m['before'] / 2**20:.1f} → {m['after'] / 2**20:.1f} MiB, "
                    f"{m['per_session'] / 1024:.1f} KiB"
                )
            else:
                cells.append("n/a")
        lines.append(f"| {index + 1} | " + " | ".join(cells) + f" | {direct['per_session'] / 1024:.1f} KiB |")
    for name, reason in memory.get("failures", {}).items():
        lines.append(f"\n{LABELS[name]}: not measured: {reason}")
    lines.append("")
    return lines


def _worker_section(worker: dict[str, Any] | None, cores: int) -> list[str]:
    lines = [
        "## 5. The Worker on the local Pyodide host",
        "",
        "The Worker bundle (`worker/build_bundle.py`'s layout, built into `bench/out/worker-bundle` when "
        "the run starts) served by `node tests/worker_host/host.mjs --entry .../entry.py --root ... "
        "--python-modules python_modules --cache-dir node_modules/.cache/worker-host`, with "
        "`OPENAI_REALTIME_URL` (the benchmark upstream), `OPENAI_API_KEY` and `DEFAULT_PROVIDER=openai` "
        "in its environment like the gateway. This is the test host (Pyodide in Node), not workerd: "
        "the figures are for the Worker's own trend from run to run, not comparable to a deployed "
        "Worker nor to the gateway. Measured after the gateway and the peers were stopped, against "
        "the same upstream, direct rounds alternating with it.",
        "",
    ]
    if worker is None:
        return [*lines, "Not run (`--no-worker`).", ""]
    if "skipped" in worker:
        return [*lines, f"**Skipped**: {worker['skipped']}.", ""]
    if "failed" in worker:
        lines += [f"**Failed** part-way: {worker['failed']}.", ""]
    rtt, conn = worker.get("rtt"), worker.get("connect")
    lines += [
        f"Host ready {worker['start_seconds']:.1f} s after start.",
        "",
        "| figure | Worker (Pyodide host) | direct | ratio Worker/direct |",
        "|---|---|---|---|",
    ]
    if rtt:
        w, d = rtt["worker"], rtt["direct"]
        lines += [
            f"| 1. small-event round trip, median ({rtt['rounds']} rounds x {rtt['n']}) "
            f"| {_us(w['median_us'])} | {_us(d['median_us'])} | {_ratio(w['median_us'], d['median_us'])} |",
            f"| 1. small-event round trip, p99 | {_us(w['p99_us'])} | {_us(d['p99_us'])} "
            f"| {_ratio(w['p99_us'], d['p99_us'])} |",
            f"| 1. added median round trip | +{w['added_median_us']:.0f} µs | | "
            f"{w['added_median_us'] / d['median_us']:.2f}x of direct |",
            f"| 1. host CPU per relayed ping | {_split(rtt['cpu']['worker'], 'worker')} | | |",
        ]
    if conn:
        w, d = conn["worker"], conn["direct"]
        lines += [
            f"| 2. TCP connect → `session.created`, median ({conn['rounds']} rounds x {conn['n']}) "
            f"| {_ms(w['median_us'])} | {_ms(d['median_us'])} | {_ratio(w['median_us'], d['median_us'])} |",
            f"| 2. TCP connect → `session.created`, p99 | {_ms(w['p99_us'])} | {_ms(d['p99_us'])} "
            f"| {_ratio(w['p99_us'], d['p99_us'])} |",
        ]
    lines.append("")
    audio = worker.get("audio")
    if audio:
        lines += [
            f"Audio sessions at small K (as in figure 3, {audio['seconds']:g} s per level; largest "
            f"passing K: {audio['largest_passing']['worker']} of the levels tried, "
            f"{', '.join(map(str, audio['ramp']))}):",
            "",
            *_audio_table(audio, "worker", cores),
            "",
        ]
    return lines


def _attempts(entry: dict[str, Any]) -> str:
    notes = []
    if entry["earlier_attempts"]:
        notes.append(f"attempt {len(entry['earlier_attempts']) + 1}")
    if entry["via"]["other_load_percent"] > _limits().NOISY_NEIGHBOUR_PERCENT:
        notes.append("other processes busy")
    return f" ({', '.join(notes)})" if notes else ""


def _per_frame(level: dict[str, Any], key: str, name: str) -> float:
    return 1e6 * level[key].get(name, float("nan")) / max(1, level["frames"])


def _intact(level: dict[str, Any]) -> str:
    if level["intact"]:
        return "yes"
    if "failed" in level:
        return f"**no** (clients failed: {level['failed'][:120]})"
    checks = level["checks"]
    problems = [
        f"{direction} {name} {value}" for direction, c in checks.items() for name, value in c.items() if value
    ]
    if level["connected"] != level["sessions"]:
        problems.append(f"connected {level['connected']}/{level['sessions']}")
    if level["ended"] != level["sessions"]:
        problems.append(f"ended {level['ended']}")
    if level["errors"]:
        problems.append(f"errors {level['errors']}: {'; '.join(e[:80] for e in level['error_examples'][:2])}")
    return "**no** (" + ", ".join(problems) + ")"


def plot_latency(rtt: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy

    paths = rtt["paths"]
    samples = {name: [v for r in rtt["samples_us"][name] for v in r] for name in paths}
    lower = min(percentile(values, 0.1) for values in samples.values())
    upper = max(percentile(values, 99.9) for values in samples.values())
    bins = numpy.geomspace(max(1.0, lower * 0.9), upper * 1.1, 150)
    figure, (histogram, cdf, tail) = plt.subplots(1, 3, figsize=(18, 5))
    for name in paths:
        values = samples[name]
        colour = COLOURS.get(name)
        label = f"{LABELS[name]} (median {median(values):.0f} µs, p99 {percentile(values, 99):.0f} µs)"
        histogram.hist(values, bins=bins, histtype="step", linewidth=1.4, color=colour, label=label)
        ordered = sorted(values)
        count = len(ordered)
        cdf.plot(ordered, [i / count for i in range(1, count + 1)], color=colour, label=LABELS[name])
        # The tail: the fraction of pings slower than x (the last sample has none: left out).
        tail.plot(ordered[:-1], [1 - i / count for i in range(1, count)], color=colour, label=LABELS[name])
    for axis in (histogram, cdf, tail):
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.grid(True, which="both", alpha=0.3)
        axis.set_xlabel("round trip (µs, log)")
    histogram.set_ylabel("pings per bin")
    histogram.set_title(f"ping→pong round trip, {len(samples['direct'])} per path (p0.1 to p99.9)")
    histogram.set_xlim(bins[0], bins[-1])
    histogram.legend(fontsize=8)
    cdf.set_ylabel("fraction ≤ x")
    cdf.set_title("cumulative distribution (all samples)")
    cdf.legend(fontsize=8)
    tail.set_yscale("log")
    tail.set_ylabel("fraction > x (log)")
    tail.set_title("tail: p90 at 0.1, p99 at 0.01, p99.9 at 0.001")
    tail.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    from .servers import OUT

    results = json.loads((OUT / "results.json").read_text())
    write_markdown(results, OUT / "RESULTS.md")
    plot_latency(results["rtt"], OUT / "latency.png")
    print(f"wrote {OUT / 'RESULTS.md'} and {OUT / 'latency.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
