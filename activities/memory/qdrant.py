"""The shared document store: Qdrant, for teams whose workers run on more than one machine.

Every worker reads and writes the same memory, so an incident closed on one machine is recalled on
all of them, and ranking happens on the server: a search moves only its hits, however large memory
grows. Documents are points of one collection whose only vector is sparse: their words, weighted by
BM25's term-frequency saturation, with Qdrant's IDF modifier supplying the corpus half of BM25.
Dense vectors live in a collection per embedding model (its dimension is the model's), keyed by the
same point ids. Without a server URL the client's embedded local mode keeps everything in a folder:
one process at a time, for trying.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import UTC, datetime

import numpy as np
from qdrant_client import AsyncQdrantClient, grpc, models
from qdrant_client.http.exceptions import ApiException, UnexpectedResponse

from activities.memory.documents import Document, MemoryUnavailable, VectorSearchError, tokens
from workflows.investigation_models import MemoryKind

# Point ids must be UUIDs or integers; ours are readable strings, mapped through a fixed namespace.
ID_NAMESPACE = uuid.UUID("5f0c7c1e-3c4f-4a7e-9a52-2f0d2b6e6d1a")
PAGE = 256
DOCUMENT_FIELDS = [f.name for f in fields(Document)]
WORDS = "words"  # the sparse vector's name
# BM25's usual constants; the average length is fixed, as a shared server's corpus has no cheap mean.
K1, B, AVERAGE_WORDS = 1.2, 0.75, 120.0


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


def _word_index(word: str) -> int:
    return int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big")


def sparse_words(text: str) -> models.SparseVector:
    """A document's side of BM25: each word's saturated frequency, normalised by document length."""
    counts = Counter(_word_index(w) for w in tokens(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVERAGE_WORDS)
    return models.SparseVector(
        indices=list(counts), values=[tf * (K1 + 1) / (tf + norm) for tf in counts.values()]
    )


def _kind_filter(kind: MemoryKind | None, *extra: models.Condition) -> models.Filter | None:
    must = [
        *extra,
        *([models.FieldCondition(key="kind", match=models.MatchValue(value=kind))] if kind else []),
    ]
    return models.Filter(must=must) if must else None


def _document(payload: dict[str, object] | None) -> Document:
    return Document(**{f: (payload or {})[f] for f in DOCUMENT_FIELDS})  # type: ignore[arg-type]


class QdrantDocuments:
    def __init__(self, client: AsyncQdrantClient, collection: str, where: str) -> None:
        self._client = client
        self.collection = collection
        self.label = f"Qdrant at {where}"  # the server URL or the local folder
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
            raise error(f"{self.label}: cannot {what}: {_describe(err)}") from err

    def vector_collection(self, model: str) -> str:
        return f"{self.collection}-vectors-{self._model_key(model)}"

    @staticmethod
    def _model_key(model: str) -> str:
        return hashlib.sha256(model.encode()).hexdigest()[:12]

    async def _create(self, name: str, **config: object) -> None:
        if await self._client.collection_exists(name):
            return
        try:
            await self._client.create_collection(name, **config)  # type: ignore[arg-type]
        except (ApiException, ValueError):
            # Another worker created it between our check and our call: that is the state we wanted.
            if not await self._client.collection_exists(name):
                raise

    async def _documents_collection(self) -> str:
        if not self._ready:
            with self._failing_as(MemoryUnavailable, "create the collection"):
                words = models.SparseVectorParams(modifier=models.Modifier.IDF)
                await self._create(self.collection, vectors_config={}, sparse_vectors_config={WORDS: words})
            self._ready = True
        return self.collection

    async def upsert(self, docs: list[Document]) -> None:
        if not docs:
            return
        now = datetime.now(UTC).isoformat()
        # Replacing the point drops its `vector_<model>` marks: a changed text is embedded again.
        points = [
            models.PointStruct(
                id=point_id(d.id),
                vector={WORDS: sparse_words(d.text)},
                payload={**asdict(d), "digest": d.digest, "stored_at": now},
            )
            for d in docs
        ]
        collection = await self._documents_collection()
        with self._failing_as(MemoryUnavailable, "store documents"):
            await self._client.upsert(collection, points=points, wait=True)

    async def delete(self, ids: list[str]) -> None:
        if not ids:
            return
        collection = await self._documents_collection()
        selector = models.PointIdsList(points=[point_id(i) for i in ids])
        with self._failing_as(MemoryUnavailable, "delete documents"):
            await self._client.delete(collection, points_selector=selector, wait=True)
            prefix = f"{collection}-vectors-"
            for other in (await self._client.get_collections()).collections:
                if other.name.startswith(prefix):
                    await self._client.delete(other.name, points_selector=selector, wait=True)

    async def documents(self, kind: MemoryKind | None) -> list[Document]:
        collection = await self._documents_collection()
        found: list[Document] = []
        offset: models.ExtendedPointId | grpc.PointId | None = None
        with self._failing_as(MemoryUnavailable, "read documents"):
            while True:
                records, offset = await self._client.scroll(
                    collection, scroll_filter=_kind_filter(kind), limit=PAGE, offset=offset, with_payload=True
                )
                found.extend(_document(r.payload) for r in records)
                if offset is None:
                    return sorted(found, key=lambda d: d.id)

    async def count(self, kind: MemoryKind | None) -> int:
        collection = await self._documents_collection()
        with self._failing_as(MemoryUnavailable, "count documents"):
            return (await self._client.count(collection, count_filter=_kind_filter(kind), exact=True)).count

    async def keyword_ranking(self, words: list[str], kind: MemoryKind | None, limit: int) -> list[Document]:
        if not words:
            return []
        indices = sorted({_word_index(w) for w in words})
        collection = await self._documents_collection()
        with self._failing_as(MemoryUnavailable, "search documents"):
            response = await self._client.query_points(
                collection,
                query=models.SparseVector(indices=indices, values=[1.0] * len(indices)),
                using=WORDS,
                query_filter=_kind_filter(kind),
                limit=limit,
                with_payload=True,
            )
        return [_document(p.payload) for p in response.points if p.score > 0]

    async def unembedded(self, model: str, kind: MemoryKind | None, limit: int) -> list[Document]:
        collection = await self._documents_collection()
        lacking = models.IsEmptyCondition(
            is_empty=models.PayloadField(key=f"vector_{self._model_key(model)}")
        )
        with self._failing_as(MemoryUnavailable, "read documents"):
            records, _ = await self._client.scroll(
                collection, scroll_filter=_kind_filter(kind, lacking), limit=limit, with_payload=True
            )
        return [_document(r.payload) for r in records]

    async def store_vectors(self, model: str, vectors: Mapping[Document, np.ndarray]) -> None:
        if not vectors:
            return
        name, key = self.vector_collection(model), f"vector_{self._model_key(model)}"
        size = len(next(iter(vectors.values())))
        points = [
            models.PointStruct(
                id=point_id(d.id), vector=v.tolist(), payload={"digest": d.digest, "kind": d.kind}
            )
            for d, v in vectors.items()
        ]
        # Mark each document embedded only if its text is still the one embedded (the digest guard).
        marks: list[models.UpdateOperation] = [
            models.SetPayloadOperation(
                set_payload=models.SetPayload(
                    payload={key: d.digest},
                    filter=models.Filter(
                        must=[
                            models.HasIdCondition(has_id=[point_id(d.id)]),
                            models.FieldCondition(key="digest", match=models.MatchValue(value=d.digest)),
                        ]
                    ),
                )
            )
            for d in vectors
        ]
        with self._failing_as(VectorSearchError, "store vectors"):
            params = models.VectorParams(size=size, distance=models.Distance.COSINE)
            await self._create(name, vectors_config=params)
            await self._client.upsert(name, points=points, wait=True)
            await self._client.batch_update_points(self.collection, update_operations=marks, wait=True)

    async def nearest(
        self, model: str, query: np.ndarray, kind: MemoryKind | None, limit: int
    ) -> list[Document]:
        name = self.vector_collection(model)
        with self._failing_as(VectorSearchError, "search vectors"):
            if not await self._client.collection_exists(name):
                return []
            response = await self._client.query_points(
                name,
                query=query.tolist(),
                query_filter=_kind_filter(kind),
                limit=limit,
                with_payload=["digest"],
            )
            hits = [(str(p.id), (p.payload or {}).get("digest")) for p in response.points if p.score > 0]
            if not hits:
                return []
            records = await self._client.retrieve(
                self.collection, ids=[i for i, _ in hits], with_payload=True
            )
        current = {str(r.id): _document(r.payload) for r in records}
        # a vector of a deleted document, or of an older text of it, does not count
        return [current[i] for i, digest in hits if i in current and current[i].digest == digest]
