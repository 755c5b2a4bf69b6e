"""A local OpenAI-compatible server for tests: the real `openai` client talks HTTP to it.

Chat completions are answered from recordings (tests/llm/recordings/*.json), one queue per model
name, so concurrent tests never read each other's answers. A recording is a list of HTTP answers,
errors included: {"status": 429, "headers": {...}, "body": {...}}. Every request body is kept for
assertions. Embeddings are computed, not recorded: a hashed bag of words, so texts sharing words
are close, which is all vector retrieval needs to be tested for real. `/health/<status>` plays
the alert's own service for the investigation's HTTP probe.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from worker.devserver import free_port

RECORDINGS = Path(__file__).parent / "recordings"
EMBEDDING_DIMENSIONS = 256


def embed_text(text: str) -> list[float]:
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


async def start_local(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free 127.0.0.1 port in this event loop; returns its runner and base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def _error(status: int, message: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return web.json_response(body, status=status)


@dataclass
class FakeOpenAI:
    queues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    broken_embeddings: bool = False
    _runner: web.AppRunner | None = None
    base_url: str = ""

    def load(self, model: str, recording: str) -> None:
        """Queue the answers of recordings/<recording>.json for requests naming `model`."""
        answers = json.loads((RECORDINGS / f"{recording}.json").read_text())["responses"]
        self.queues[model] = list(answers)

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def chats(self, model: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("model") == model and "messages" in r]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/health/{status}", self._health)
        self._runner, root = await start_local(app)
        self.base_url = f"{root}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.Response:
        if request.headers.get("authorization") != "Bearer test-key":
            return _error(401, "Incorrect API key provided", "invalid_api_key")
        body = await request.json()
        self.requests.append(body)
        queue = self.queues.get(body.get("model", ""))
        if not queue:
            return _error(
                404, f"The model `{body.get('model')}` has no recorded answer left", "model_not_found"
            )
        answer = queue.pop(0)
        return web.json_response(
            answer["body"], status=answer.get("status", 200), headers=answer.get("headers")
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["status"]), text="checkout health")

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.broken_embeddings:
            return _error(503, "embedding backend overloaded")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(len(str(text).split()) for text in inputs)
        return web.json_response(
            {
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": embed_text(str(text))}
                    for i, text in enumerate(inputs)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
