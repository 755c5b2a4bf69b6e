"""Run the parts of Remediator until SIGINT or SIGTERM: the worker, the API, or (for `remediator dev`)
the Temporal dev server with both.

The worker and uvicorn share one asyncio loop and the dev server is a child process. On a signal,
everything stops in the reverse order of starting: first the API (no new alerts), then the worker
(it shuts down gracefully while Temporal is still up), then the dev server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from temporalio.client import Client

from activities.config import Settings
from worker.codec import with_dev_key
from worker.devserver import DevServer, PortInUse
from worker.main import run_worker

LOCALHOST = "127.0.0.1"
AppFactory = Callable[[Settings, str], Any]  # api.app.create_app; passed in because api sits above us


@dataclass(frozen=True)
class Ports:
    temporal: int
    ui: int
    api: int


@dataclass(frozen=True)
class StackInfo:
    """Where the running stack answers; handed to the `on_ready` hook (banner, demo)."""

    temporal_address: str
    ui_url: str
    api_url: str
    state_dir: Path


class ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers.

    Its handlers would stop only the API and re-raise the signal once it stopped; here one handler
    stops every part in order.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def api_server(app: Any, host: str, port: int, log_level: str = "warning") -> ApiServer:
    return ApiServer(uvicorn.Config(app, host=host, port=port, log_level=log_level))


def bind(host: str, port: int) -> socket.socket:
    """Listen before anything else starts: a taken port fails early, and the port stays ours."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise PortInUse("API", port) from err
    sock.listen(128)
    return sock


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT (Ctrl-C) or SIGTERM (`kill`, a container stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve(server: ApiServer, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as err:
        # uvicorn exits the process when the app fails to start; the other parts must stop first.
        raise RuntimeError("the API failed to start (its error is above)") from err


async def supervise(
    stop: asyncio.Event,
    worker: Coroutine[Any, Any, None] | None = None,
    api: tuple[ApiServer, socket.socket] | None = None,
    helper: Coroutine[Any, Any, None] | None = None,
) -> None:
    """Run until `stop` is set or a part ends, then stop them all; re-raise the first failure.

    `helper` (the demo) may finish early without stopping anything; if it fails, everything stops.
    """
    api_task = asyncio.create_task(_serve(*api), name="api") if api else None
    worker_task = asyncio.create_task(worker, name="worker") if worker else None
    helper_task = asyncio.create_task(helper, name="helper") if helper else None
    stopper = asyncio.create_task(stop.wait(), name="stop")
    parts = [t for t in (api_task, worker_task, helper_task) if t]
    pending: set[asyncio.Task[Any]] = {stopper, *parts}
    while True:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if any(t is not helper_task or t.exception() for t in done):
            break
    if api:
        api[0].should_exit = True
    for task in (worker_task, helper_task, stopper):
        if task:
            task.cancel()  # one cancel is the worker's graceful shutdown; a second could cut it short
    results = await asyncio.gather(*parts, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def run_dev(
    settings: Settings,
    ports: Ports,
    make_app: AppFactory,
    on_ready: Callable[[StackInfo], Coroutine[Any, Any, None]],
) -> None:
    """`remediator dev`: persisted dev server, worker and API until a signal; nothing left behind."""
    stop = stop_on_signals()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    settings = with_dev_key(settings)  # the demo's history is encrypted like any other
    api_socket = bind(LOCALHOST, ports.api)
    # SQLite under the state dir: incidents (and their timers) survive a restart of `dev`.
    server = DevServer(
        port=ports.temporal,
        ui_port=ports.ui,
        db_file=settings.state_dir / "temporal.db",
        log_file=settings.state_dir / "temporal.log",
    )
    try:
        try:
            client: Client = await server.start(settings=settings)
        except RuntimeError as err:
            raise RuntimeError(f"{err}; see {server.log_file}") from err
        info = StackInfo(server.address, server.ui_url, f"http://{LOCALHOST}:{ports.api}", settings.state_dir)
        await supervise(
            stop,
            worker=run_worker(client, settings),
            api=(api_server(make_app(settings, server.address), LOCALHOST, ports.api), api_socket),
            helper=on_ready(info),
        )
    finally:
        api_socket.close()
        server.stop()
