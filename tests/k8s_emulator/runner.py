"""Run the emulator on 127.0.0.1 in a thread of its own, so blocking clients can call it from tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kmock
import yaml

from tests.k8s_emulator.server import ClusterEmulator


@contextmanager
def running_emulator() -> Iterator[tuple[ClusterEmulator, str]]:
    """Yield the emulator and its URL; stop it on exit."""
    loop = asyncio.new_event_loop()
    emulator = ClusterEmulator(loop=loop)
    started: asyncio.Future[str] = loop.create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with emulator, kmock.Server(emulator) as server:
            started.set_result(str(server.url).rstrip("/"))
            await stop.wait()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(),), name="k8s-emulator", daemon=True
    )
    thread.start()
    url = asyncio.run_coroutine_threadsafe(asyncio.wait_for(asyncio.shield(started), 10), loop).result(15)
    try:
        yield emulator, url
    finally:
        loop.call_soon_threadsafe(emulator.close)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        if not thread.is_alive():  # a test that hung a request leaves it to the daemon thread
            loop.close()


def write_kubeconfig(path: Path, url: str, namespace: str = "default", context: str = "emulator") -> Path:
    """A kubeconfig for the plain-HTTP emulator, as kubectl and the kubernetes client both read it."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": "emulator-token"}}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
        ],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config))
    return path
