"""Debian's real Prometheus (/usr/bin/prometheus) for tests, and an exporter for it to scrape.

`running_prometheus` starts it on a free port with its own data folder; given `targets`, it scrapes
them every second with `honor_labels`, so an exporter can play kube-state-metrics or cAdvisor with
their own label names. `serving_metrics` is such an exporter: fixed text in the exposition format.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from aiohttp import web

from worker.devserver import free_port

PROMETHEUS = "/usr/bin/prometheus"


async def _wait(check_url: str, params: dict[str, str], ready: str, log: Path, seconds: float = 30) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(int(seconds * 10)):
            try:
                response = await http.get(check_url, params=params)
                if response.status_code == 200 and ready in response.text:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"Prometheus not ready at {check_url} {params}: {log.read_text()[-2000:]}")


@asynccontextmanager
async def running_prometheus(folder: Path, targets: Sequence[str] = ()) -> AsyncIterator[str]:
    """Prometheus' URL; with `targets`, only once it has scraped every one of them."""
    config = {
        "global": {"scrape_interval": "1s" if targets else "15s"},
        "scrape_configs": [
            {"job_name": "exporter", "honor_labels": True, "static_configs": [{"targets": list(targets)}]}
        ]
        if targets
        else [],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port, log = free_port(), folder / "log"
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait(f"{url}/-/ready", {}, "", log)
        if targets:
            up = f'count(up{{job="exporter"}} == 1) == {len(targets)}'
            await _wait(f"{url}/api/v1/query", {"query": up}, '"result":[{', log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@asynccontextmanager
async def serving_metrics(text: str) -> AsyncIterator[str]:
    """An exporter on 127.0.0.1 answering /metrics with `text`; yields its host:port."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()
