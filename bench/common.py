"""What the benchmark's processes share: frame formats, /proc readings, statistics.

The hot frames (audio appends and deltas) have a fixed layout: ``event_id``, the stamp, comes right
after ``type``, so that the harness builds and reads them as bytes (``bench/wire.py``) and spends as
little CPU as possible on them; the gateway relays the very bytes it receives, so the layout
survives the trip through it.
"""

from __future__ import annotations

import base64
import os
import random
import resource
import socket

# 100 ms of PCM16 mono at 24 kHz: 2400 samples, 4800 bytes, 6400 base64 characters.
CHUNK_SECONDS = 0.1
_rng = random.Random(24000)
AUDIO_B64 = base64.b64encode(bytes(_rng.getrandbits(8) for _ in range(4800))).decode()
assert len(AUDIO_B64) == 6400

# Client -> provider audio: event_id is ``a<seq>_<monotonic ns at send>`` (fixed widths: bench/wire.py).
APPEND_HEAD = '{"type":"input_audio_buffer.append","event_id":"a'
APPEND_TAIL = '","audio":"' + AUDIO_B64 + '"}'

# Provider -> client audio: event_id is ``d<seq>_<monotonic ns at send>`` (likewise).
DELTA_HEAD = '{"type":"response.output_audio.delta","event_id":"d'
DELTA_TAIL = (
    '","response_id":"resp_bench","item_id":"item_bench","output_index":0,"content_index":0,'
    '"delta":"' + AUDIO_B64 + '"}'
)

# The small event of the round-trip figure. ``bench.ping`` itself is not a client event type the
# gateway relays (it answers ``unknown_event_type``), so the ping is a valid small client event
# carrying the tag in extra fields, which the protocol's models keep; the upstream answers either.
PING_FORMAT = '{"type":"input_audio_buffer.commit","event_id":"p%d","bench":"ping","seq":%d}'
PONG_FORMAT = '{"type":"bench.pong","seq":%d}'

# Audio mode: ``response.create`` starts the upstream's output stream, ``response.cancel`` stops it
# and makes the upstream answer with ``bench.end`` (its counts and the per-frame latencies it saw).
START_AUDIO = '{"type":"response.create","event_id":"bench_start","bench":"audio"}'
STOP_AUDIO = '{"type":"response.cancel","event_id":"bench_stop","bench":"stop"}'

API_KEY = "sk-bench-not-a-real-key"


def stamp_of(event_id: str) -> tuple[int, int]:
    """``(seq, sent_ns)`` from an event_id ``<letter><seq>_<ns>``: the slow path, for a relay that
    re-serialises the events it relays (LiteLLM writes them back with ``json.dumps``' spacing); the
    fast path reads the stamp by its offset in the frame (``bench/wire.py``)."""
    seq, _, sent = event_id[1:].partition("_")
    return int(seq), int(sent)


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` so far (its threads included), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK  # utime, stime (fields 14 and 15)


def machine_cpu_seconds() -> tuple[float, float, float]:
    """CPU seconds of the whole machine so far, all cores summed, from /proc/stat: busy, busy in
    processes (user, nice, system; not interrupts, which the kernel charges to no process), total."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(value) for value in stat.readline().split()[1:9]
        )
    busy = user + nice + system + irq + softirq + steal
    return busy / _TICK, (user + nice + system) / _TICK, (busy + idle + iowait) / _TICK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (from the parent pids in /proc/<pid>/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, queue = [pid], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            tree.append(child)
            queue.append(child)
    return tree


def tree_cpu_times(pid: int) -> tuple[float, float]:
    """:func:`cpu_times` summed over ``pid``'s process tree (a process that vanished counts 0)."""
    user = system = 0.0
    for member in process_tree(pid):
        try:
            u, s = cpu_times(member)
        except (OSError, IndexError, ValueError):
            continue
        user, system = user + u, system + s
    return user, system


def tree_rss_bytes(pid: int) -> int:
    """VmRSS summed over ``pid``'s process tree."""
    total = 0
    for member in process_tree(pid):
        try:
            total += rss_bytes(member)
        except (OSError, RuntimeError):
            continue
    return total


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation, like numpy's default."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    return percentile(values, 50)
