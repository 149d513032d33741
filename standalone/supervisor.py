"""``realtime-gateway serve --workers N``: N gateway processes behind one port, kept running.

One gateway process runs on one core (the relay is Python on one event loop). The supervisor
binds the port, starts N worker processes that serve it (each a whole gateway:
``realtime-gateway serve`` on an inherited socket), restarts one that crashes, and on SIGTERM
(or Ctrl-C) stops listening and has every worker drain within SHUTDOWN_TIMEOUT_SECONDS.

**Sockets.** Where the OS has ``SO_REUSEPORT`` (Linux, the BSDs), the supervisor opens one
listening socket per worker, all on the same port, and hands socket *i* to worker *i*: the
kernel spreads new connections evenly over the sockets (by a hash of the connection), where one
shared socket would let whichever process wakes first take most of them. Because the supervisor
holds the sockets, a crashed worker's backlog is not lost: the connections queued on its socket
wait for its replacement instead of being reset. Without ``SO_REUSEPORT`` every worker accepts
from one shared socket.

**Limits.** Each worker is a whole gateway: MAX_SESSIONS is per worker. Per-subject limits and
revocations hold across workers only through Redis (``REDIS_URL``); without it they are per
worker, and the supervisor says so at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence

from shared.config import Settings

logger = logging.getLogger("realtime_gateway")

# A worker that exits is restarted after a pause that doubles with each quick crash, up to this.
MAX_RESTART_DELAY_SECONDS = 10.0
FIRST_RESTART_DELAY_SECONDS = 0.1
# A worker that ran this long before exiting crashed "once", not in a loop: its delay starts over.
STABLE_SECONDS = 30.0
# Beyond SHUTDOWN_TIMEOUT_SECONDS, how long a draining worker may take to exit before it is killed.
EXIT_GRACE_SECONDS = 2.0
BACKLOG = 128  # aiohttp's default, per socket


def cpu_count() -> int:
    """The cores this process may run on (``--workers auto``)."""
    if hasattr(os, "process_cpu_count"):
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def listening_sockets(host: str, port: int, workers: int) -> list[socket.socket]:
    """One socket per worker on ``host:port`` with SO_REUSEPORT, else one for all of them."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers if reuse_port else 1):
            listener = socket.socket(family, kind, proto)
            sockets.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(address)
            listener.listen(BACKLOG)
            address = listener.getsockname()  # port 0: the others join the port the first one got
    except OSError:
        for listener in sockets:
            listener.close()
        raise
    return sockets


class Supervisor:
    """Starts, restarts and stops the worker processes."""

    def __init__(self, settings: Settings, workers: int, worker_command: Sequence[str]) -> None:
        self._settings = settings
        self._workers = workers
        self._command = list(worker_command)  # the worker's `serve` command, less its socket
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._stopping: asyncio.Event | None = None

    def run(self, sockets: list[socket.socket]) -> int:
        return asyncio.run(self._run(sockets))

    async def _run(self, sockets: list[socket.socket]) -> int:
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        if self._settings.redis_url is None:
            logger.warning(
                "%d workers without REDIS_URL: MAX_SESSIONS_PER_SUBJECT, SESSIONS_PER_MINUTE_PER_SUBJECT "
                "and token revocations hold per worker, not across them",
                self._workers,
            )
        keepers = [
            asyncio.ensure_future(self._keep(index, sockets[index % len(sockets)]))
            for index in range(self._workers)
        ]
        await self._stopping.wait()
        # Stop listening first: the workers close their copies as they drain, and a connection
        # must not be queued on a socket that nobody will accept from.
        for listener in sockets:
            listener.close()
        deadline = self._settings.shutdown_timeout_seconds + EXIT_GRACE_SECONDS
        logger.info("stopping %d workers (up to %g s)", len(self._processes), deadline)
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        _, late = await asyncio.wait(keepers, timeout=deadline)
        for index, process in self._processes.items():
            if process.returncode is None:
                logger.warning("worker %d (pid %d) did not exit in time: killed", index, process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if late:
            await asyncio.wait(late)
        return 0

    async def _keep(self, index: int, listener: socket.socket) -> None:
        """Run worker ``index`` on ``listener``; restart it whenever it exits before the shutdown."""
        assert self._stopping is not None
        delay = FIRST_RESTART_DELAY_SECONDS
        while not self._stopping.is_set():
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                *self._command,
                "--listen-fd",
                str(listener.fileno()),
                "--worker-count",
                str(self._workers),
                pass_fds=(listener.fileno(),),
                start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops them once
            )
            self._processes[index] = process
            logger.info("worker %d started (pid %d)", index, process.pid)
            if self._stopping.is_set():  # the stop came while it was starting: it was not told
                process.send_signal(signal.SIGTERM)
            code = await process.wait()
            if self._stopping.is_set():
                logger.info("worker %d (pid %d) stopped (exit %s)", index, process.pid, code)
                return
            if time.monotonic() - started >= STABLE_SECONDS:
                delay = FIRST_RESTART_DELAY_SECONDS
            logger.error(
                "worker %d (pid %d) exited unexpectedly (exit %s); restarting in %g s",
                index,
                process.pid,
                code,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)


def worker_command(host: str, port: int, tls_cert: str | None, tls_key: str | None) -> list[str]:
    """How the supervisor starts a worker: this same CLI, ``serve`` on an inherited socket."""
    command = [sys.executable, "-m", f"{__package__}.cli", "serve", "--host", host, "--port", str(port)]
    if tls_cert and tls_key:
        command += ["--tls-cert", tls_cert, "--tls-key", tls_key]
    return command


async def exit_with_parent(parent: int, period: float = 1.0) -> None:
    """In a worker: shut down (as on SIGTERM) once the supervisor is gone, rather than serve on
    unsupervised (a killed supervisor cannot stop its workers)."""
    while os.getppid() == parent:  # noqa: ASYNC110 (no event to wait on: a parent's exit is polled)
        await asyncio.sleep(period)
    logger.error("the supervisor (pid %d) is gone: shutting down", parent)
    os.kill(os.getpid(), signal.SIGTERM)
