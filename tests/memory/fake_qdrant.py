"""A local Qdrant REST server for tests: the real `qdrant-client` talks HTTP to it.

No Qdrant server binary can be installed here, so this speaks the subset of Qdrant's REST API our
store uses and answers from qdrant-client's own embedded engine (local mode), which implements the
same collection, filter and search semantics. Request and answer bodies are Qdrant's own OpenAPI
models, so a client sending something the server would not accept fails here too. It also plays
the server's API key check (401) and, with `down`, a server that answers 503.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from qdrant_client import AsyncQdrantClient
from qdrant_client.http import models

from tests.llm.fake_openai import start_local

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _answer(result: Any, status: int = 200) -> web.Response:
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json", exclude_none=True)
    elif isinstance(result, list):
        result = [r.model_dump(mode="json", exclude_none=True) for r in result]
    return web.json_response({"result": result, "status": "ok", "time": 0.0001}, status=status)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": {"error": message}, "time": 0.0001}, status=status)


@dataclass
class FakeQdrant:
    api_key: str = "qdrant-test-key"
    down: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    _engine: AsyncQdrantClient = field(default_factory=lambda: AsyncQdrantClient(location=":memory:"))
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard])
        routes = app.router
        routes.add_get("/", self._version)
        routes.add_get("/collections", self._collections)
        routes.add_get("/collections/{name}/exists", self._exists)
        routes.add_put("/collections/{name}", self._create)
        routes.add_put("/collections/{name}/points", self._upsert)
        routes.add_post("/collections/{name}/points", self._retrieve)
        routes.add_post("/collections/{name}/points/scroll", self._scroll)
        routes.add_post("/collections/{name}/points/query", self._query)
        routes.add_post("/collections/{name}/points/delete", self._delete)
        routes.add_post("/collections/{name}/points/count", self._count)
        routes.add_post("/collections/{name}/points/batch", self._batch)
        self._runner, self.url = await start_local(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self._engine.close()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if request.path != "/" and request.headers.get("api-key") != self.api_key:
            return _error(401, "Must provide an API key or an Authorization bearer token")
        if self.down:
            return _error(503, "Service Unavailable: the node is shutting down")
        try:
            return await handler(request)
        except ValidationError as err:
            return _error(400, f"Format error in JSON body: {err}")
        except ValueError as err:  # how the embedded engine refuses, e.g. an unknown collection
            status = 404 if "not found" in str(err).lower() else 400
            return _error(status, f"Not found: {err}" if status == 404 else f"Bad request: {err}")

    async def _version(self, _: web.Request) -> web.Response:
        version = importlib.metadata.version("qdrant-client")
        return web.json_response({"title": "qdrant - vector search engine", "version": version})

    async def _exists(self, request: web.Request) -> web.Response:
        exists = await self._engine.collection_exists(request.match_info["name"])
        return _answer({"exists": exists})

    async def _create(self, request: web.Request) -> web.Response:
        body = models.CreateCollection.model_validate(await request.json())
        name = request.match_info["name"]
        if await self._engine.collection_exists(name):
            return _error(409, f"Wrong input: Collection `{name}` already exists!")
        created = await self._engine.create_collection(
            name, vectors_config=body.vectors, sparse_vectors_config=body.sparse_vectors
        )
        return _answer(created)

    async def _collections(self, _: web.Request) -> web.Response:
        return _answer(await self._engine.get_collections())

    async def _upsert(self, request: web.Request) -> web.Response:
        body = models.PointsList.model_validate(await request.json())
        return _answer(await self._engine.upsert(request.match_info["name"], points=body.points))

    async def _retrieve(self, request: web.Request) -> web.Response:
        body = models.PointRequest.model_validate(await request.json())
        records = await self._engine.retrieve(
            request.match_info["name"],
            ids=body.ids,
            with_payload=body.with_payload if body.with_payload is not None else True,
            with_vectors=body.with_vector or False,
        )
        return _answer(records)

    async def _scroll(self, request: web.Request) -> web.Response:
        body = models.ScrollRequest.model_validate(await request.json())
        records, offset = await self._engine.scroll(
            request.match_info["name"],
            scroll_filter=body.filter,
            limit=body.limit or 10,
            offset=body.offset,
            with_payload=body.with_payload if body.with_payload is not None else True,
        )
        return _answer(models.ScrollResult(points=records, next_page_offset=offset))

    async def _query(self, request: web.Request) -> web.Response:
        body = models.QueryRequest.model_validate(await request.json())
        query = body.query.nearest if isinstance(body.query, models.NearestQuery) else body.query
        response = await self._engine.query_points(
            request.match_info["name"],
            query=query,  # type: ignore[arg-type]
            using=body.using,
            query_filter=body.filter,
            limit=body.limit or 10,
            with_payload=body.with_payload if body.with_payload is not None else False,
        )
        return _answer(response)

    async def _delete(self, request: web.Request) -> web.Response:
        body = models.PointIdsList.model_validate(await request.json())
        return _answer(await self._engine.delete(request.match_info["name"], points_selector=body))

    async def _count(self, request: web.Request) -> web.Response:
        body = models.CountRequest.model_validate(await request.json())
        counted = await self._engine.count(request.match_info["name"], count_filter=body.filter, exact=True)
        return _answer(counted)

    async def _batch(self, request: web.Request) -> web.Response:
        body = models.UpdateOperations.model_validate(await request.json())
        return _answer(await self._engine.batch_update_points(request.match_info["name"], body.operations))
