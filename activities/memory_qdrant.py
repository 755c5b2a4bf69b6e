"""The shared document store: Qdrant, for teams whose workers run on more than one machine.

Every worker reads and writes the same memory, so an incident closed on one machine is recalled on
all of them. Documents are points with no vector in one collection; vectors live in a collection per
embedding model (its dimension is the model's), keyed by the same point ids. Without a server URL
the client's embedded local mode keeps everything in a folder: one process at a time, for trying.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import UTC, datetime

import numpy as np
from qdrant_client import AsyncQdrantClient, grpc, models
from qdrant_client.http.exceptions import ApiException, UnexpectedResponse

from activities.memory_documents import Document, MemoryUnavailable, VectorSearchError
from workflows.investigation_models import MemoryKind

# Point ids must be UUIDs or integers; ours are readable strings, mapped through a fixed namespace.
ID_NAMESPACE = uuid.UUID("5f0c7c1e-3c4f-4a7e-9a52-2f0d2b6e6d1a")
PAGE = 256
DOCUMENT_FIELDS = [f.name for f in fields(Document)]


def _describe(err: Exception) -> str:
    """The server's own one-line reason rather than the client's dump of the raw response."""
    if isinstance(err, UnexpectedResponse):
        try:
            reason = json.loads(err.content)["status"]["error"]
        except (ValueError, KeyError, TypeError):
            reason = err.content.decode(errors="replace")[:200]
        return f"{err.status_code} {err.reason_phrase}: {reason}"
    return str(err) or type(err).__name__


def point_id(doc_id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, doc_id))


class QdrantDocuments:
    def __init__(self, client: AsyncQdrantClient, collection: str, where: str) -> None:
        self._client = client
        self.collection = collection
        self.where = where  # for messages: the server URL or the local folder
        self._ready = False

    async def close(self) -> None:
        """Releases the local mode's folder lock; a server connection just closes."""
        await self._client.close()

    @contextmanager
    def _failing_as(self, error: type[Exception], what: str) -> Iterator[None]:
        # ValueError is how the embedded local mode refuses; the server answers with ApiException.
        try:
            yield
        except (ApiException, ValueError, OSError) as err:
            raise error(f"Qdrant at {self.where}: cannot {what}: {_describe(err)}") from err

    def vector_collection(self, model: str) -> str:
        return f"{self.collection}-vectors-{hashlib.sha256(model.encode()).hexdigest()[:12]}"

    async def _create(self, name: str, vectors: models.VectorParams | dict[str, models.VectorParams]) -> None:
        if await self._client.collection_exists(name):
            return
        try:
            await self._client.create_collection(name, vectors_config=vectors)
        except (ApiException, ValueError):
            # Another worker created it between our check and our call: that is the state we wanted.
            if not await self._client.collection_exists(name):
                raise

    async def _documents_collection(self) -> str:
        if not self._ready:
            with self._failing_as(MemoryUnavailable, "create the collection"):
                await self._create(self.collection, {})
            self._ready = True
        return self.collection

    async def upsert(self, docs: list[Document]) -> None:
        if not docs:
            return
        now = datetime.now(UTC).isoformat()
        points = [
            models.PointStruct(
                id=point_id(d.id), vector={}, payload={**asdict(d), "digest": d.digest, "stored_at": now}
            )
            for d in docs
        ]
        collection = await self._documents_collection()
        with self._failing_as(MemoryUnavailable, "store documents"):
            await self._client.upsert(collection, points=points, wait=True)

    async def delete(self, ids: list[str]) -> None:
        # Vectors of deleted documents stay in their model's collection: `nearest` only ever looks
        # among current documents, so they are never returned.
        if not ids:
            return
        collection = await self._documents_collection()
        selector = models.PointIdsList(points=[point_id(i) for i in ids])
        with self._failing_as(MemoryUnavailable, "delete documents"):
            await self._client.delete(collection, points_selector=selector, wait=True)

    async def documents(self, kind: MemoryKind | None) -> list[Document]:
        collection = await self._documents_collection()
        same_kind = None
        if kind:
            same_kind = models.Filter(
                must=[models.FieldCondition(key="kind", match=models.MatchValue(value=kind))]
            )
        found: list[Document] = []
        offset: models.ExtendedPointId | grpc.PointId | None = None
        with self._failing_as(MemoryUnavailable, "read documents"):
            while True:
                records, offset = await self._client.scroll(
                    collection,
                    scroll_filter=same_kind,
                    limit=PAGE,
                    offset=offset,
                    with_payload=DOCUMENT_FIELDS,
                )
                found.extend(Document(**(r.payload or {})) for r in records)
                if offset is None:
                    return sorted(found, key=lambda d: d.id)

    async def missing_vectors(self, docs: list[Document], model: str) -> list[Document]:
        name = self.vector_collection(model)
        stored: dict[str, object] = {}  # point id -> digest of the text its vector was made from
        with self._failing_as(VectorSearchError, "read vectors"):
            if await self._client.collection_exists(name):
                for start in range(0, len(docs), PAGE):
                    ids = [point_id(d.id) for d in docs[start : start + PAGE]]
                    records = await self._client.retrieve(name, ids=ids, with_payload=["digest"])
                    stored.update((str(r.id), (r.payload or {}).get("digest")) for r in records)
        return [d for d in docs if stored.get(point_id(d.id)) != d.digest]

    async def store_vectors(self, model: str, vectors: Mapping[Document, np.ndarray]) -> None:
        if not vectors:
            return
        name = self.vector_collection(model)
        size = len(next(iter(vectors.values())))
        points = [
            models.PointStruct(id=point_id(d.id), vector=v.tolist(), payload={"digest": d.digest})
            for d, v in vectors.items()
        ]
        with self._failing_as(VectorSearchError, "store vectors"):
            await self._create(name, models.VectorParams(size=size, distance=models.Distance.COSINE))
            await self._client.upsert(name, points=points, wait=True)

    async def nearest(self, model: str, query: np.ndarray, among: list[Document], limit: int) -> list[str]:
        if not among:
            return []
        current = {point_id(d.id): d for d in among}
        with self._failing_as(VectorSearchError, "search vectors"):
            response = await self._client.query_points(
                self.vector_collection(model),
                query=query.tolist(),
                query_filter=models.Filter(must=[models.HasIdCondition(has_id=list(current))]),
                limit=limit,
                with_payload=["digest"],
            )
        # a vector made from an older text of the document does not count
        return [
            current[str(p.id)].id
            for p in response.points
            if p.score > 0 and (p.payload or {}).get("digest") == current[str(p.id)].digest
        ]
