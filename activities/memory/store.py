"""Incident memory and runbooks: hybrid retrieval over a document store.

Every closed incident is stored as what a later diagnosis needs (workflows/incident_memory.py: alert
name and service, diagnosis, actions, outcome; no annotations, evidence or transcripts); Markdown runbooks
from REMEDIATOR_RUNBOOK_DIR are indexed per section. Retrieval always ranks by keywords (BM25) and,
when REMEDIATOR_EMBEDDING_MODEL names a model, also by cosine similarity of embeddings from an
OpenAI-compatible /embeddings endpoint; the two rankings are merged by reciprocal rank fusion.

Where documents and vectors live is REMEDIATOR_MEMORY_BACKEND: `sqlite` (one file, no server, the
default) or `qdrant` (a server every worker shares, or Qdrant's embedded local mode).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from temporalio import activity

from activities.config import Settings
from activities.llm import make_client
from activities.memory.documents import (
    Document,
    DocumentStore,
    MemoryUnavailable,
    VectorSearchError,
    incident_document,
    runbook_documents,
    tokens,
)
from activities.memory.sqlite import SqliteDocuments
from workflows.activity_names import MEMORY_RECORD_INCIDENT, MEMORY_SEARCH
from workflows.alerts import Alert
from workflows.incident_memory import IncidentMemory
from workflows.incident_models import IncidentState
from workflows.investigation_models import MemoryHit, MemoryQuery, MemoryResult

if TYPE_CHECKING:
    import openai

RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the head of each ranking
SNIPPET_CHARS = 700
EMBED_BATCH = 256  # documents embedded per search: a large unembedded memory is caught up gradually


class Embedder:
    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self._client = client
        self.model = model

    async def embed(self, texts: list[str]) -> list[np.ndarray]:
        import openai  # loaded already: the client passed in is one of its

        try:
            response = await self._client.embeddings.create(model=self.model, input=texts)
        except openai.OpenAIError as err:
            raise VectorSearchError(f"{type(err).__name__}: {err}") from err
        vectors = [
            np.asarray(item.embedding, dtype=np.float32)
            for item in sorted(response.data, key=lambda d: d.index)
        ]
        if len(vectors) != len(texts):
            raise VectorSearchError(f"asked for {len(texts)} embeddings, got {len(vectors)}")
        return [v / (np.linalg.norm(v) or 1.0) for v in vectors]


def _rrf(*rankings: list[str]) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


class MemoryStore:
    """Hybrid retrieval over a document store: BM25 always, vectors when an embedder is given."""

    def __init__(
        self, documents: DocumentStore, runbook_dir: Path | None = None, embedder: Embedder | None = None
    ) -> None:
        self.documents = documents
        self._runbook_dir = runbook_dir
        self._embedder = embedder

    async def upsert(self, doc: Document) -> None:
        await self.documents.upsert([doc])

    async def sync_runbooks(self) -> None:
        """Bring the runbook index in line with the folder: new, changed and deleted sections."""
        if self._runbook_dir is None or not self._runbook_dir.is_dir():
            return
        folder = self._runbook_dir
        docs = await asyncio.to_thread(lambda: list(runbook_documents(folder)))
        known = {d.id: d for d in await self.documents.documents("runbook")}
        await self.documents.upsert([d for d in docs if known.get(d.id) != d])
        await self.documents.delete(sorted(known.keys() - {d.id for d in docs}))

    async def _vector_ranking(self, query: MemoryQuery) -> list[Document]:
        if self._embedder is None:
            return []
        model = self._embedder.model
        missing = await self.documents.unembedded(model, query.kind, EMBED_BATCH)
        if missing:
            vectors = await self._embedder.embed([d.text for d in missing])
            await self.documents.store_vectors(model, dict(zip(missing, vectors, strict=True)))
        (query_vector,) = await self._embedder.embed([query.text])
        return await self.documents.nearest(model, query_vector, query.kind, query.limit * 2)

    async def search(self, query: MemoryQuery) -> MemoryResult:
        if query.kind != "incident":
            await self.sync_runbooks()
        # each ranking twice as deep as asked, so fusion has room to reorder
        keywords = await self.documents.keyword_ranking(tokens(query.text), query.kind, query.limit * 2)
        note = ""
        try:
            vectors = await self._vector_ranking(query)
        except VectorSearchError as err:
            vectors, note = [], f"vector search unavailable, keywords only: {err}"
        if not keywords and not vectors and not await self.documents.count(query.kind):
            return MemoryResult(note="memory is empty")
        by_id = {d.id: d for d in [*keywords, *vectors]}
        bm25, nearest = [d.id for d in keywords], [d.id for d in vectors]
        hits: list[MemoryHit] = []
        for doc_id, score in sorted(_rrf(bm25, nearest).items(), key=lambda item: (-item[1], item[0]))[
            : query.limit
        ]:
            doc = by_id[doc_id]
            hit = MemoryHit(
                id=doc_id,
                kind=doc.kind,
                title=doc.title,
                snippet=doc.body[:SNIPPET_CHARS],
                score=round(score, 5),
                category=doc.category,
                outcome=doc.outcome,
            )
            if doc_id in bm25:
                hit.matched_by.append("bm25")
            if doc_id in nearest:
                hit.matched_by.append("vector")
            hits.append(hit)
        return MemoryResult(hits=hits, note=note)

    async def priors_for(self, alert: Alert, limit: int = 5) -> dict[str, float]:
        """Categories of similar past incidents, weighted by similarity: priors for the heuristic."""
        text = " ".join([alert.name, alert.service, *alert.labels.values(), *alert.annotations.values()])
        result = await self.search(MemoryQuery(text=text, kind="incident", limit=limit))
        return category_priors(result.hits)


def category_priors(hits: list[MemoryHit]) -> dict[str, float]:
    """Share of retrieval weight per diagnosed category; incidents that did not resolve count half."""
    weights: dict[str, float] = {}
    for hit in hits:
        if hit.kind == "incident" and hit.category:
            weight = hit.score if hit.outcome == "Resolved" else hit.score / 2
            weights[hit.category] = weights.get(hit.category, 0.0) + weight
    total = sum(weights.values())
    return {category: round(w / total, 3) for category, w in weights.items()} if total else {}


def build_documents(settings: Settings) -> DocumentStore:
    if settings.memory_backend == "sqlite":
        return SqliteDocuments(settings.memory_file)
    # Imported only when Qdrant is the backend: qdrant_client adds tens of MB to every worker and
    # API process, and about a second to their start-up (issue 12).
    from qdrant_client import AsyncQdrantClient

    from activities.memory.qdrant import QdrantDocuments

    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() or None
        client = AsyncQdrantClient(
            url=settings.qdrant_url, api_key=key, timeout=settings.qdrant_timeout_seconds
        )
        return QdrantDocuments(client, settings.qdrant_collection, settings.qdrant_url)
    folder = settings.state_dir / "qdrant"
    try:
        client = AsyncQdrantClient(path=str(folder))
    except RuntimeError as err:  # the local mode locks its folder: another process has it open
        raise MemoryUnavailable(f"Qdrant local mode at {folder}: {err}") from err
    return QdrantDocuments(client, settings.qdrant_collection, str(folder))


def build_store(settings: Settings) -> MemoryStore:
    embedder = None
    if settings.embedding_model:
        client = make_client(
            settings.embedding_base_url or settings.llm_base_url,
            settings.embedding_api_key
            if settings.embedding_api_key.get_secret_value()
            else settings.llm_api_key,
            settings.llm_timeout_seconds,
        )
        embedder = Embedder(client, settings.embedding_model)
    return MemoryStore(build_documents(settings), settings.runbook_dir, embedder)


class MemoryActivities:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @activity.defn(name=MEMORY_SEARCH)
    async def search(self, query: MemoryQuery) -> MemoryResult:
        return await self.store.search(query)

    @activity.defn(name=MEMORY_RECORD_INCIDENT)
    async def record_incident(self, record: IncidentMemory | IncidentState) -> str:
        """Idempotent: the document id comes from the incident and its closing time, so a retry overwrites.

        A whole IncidentState is what workflows scheduled before the memory was trimmed; it is trimmed here.
        """
        memory = record if isinstance(record, IncidentMemory) else IncidentMemory.of(record)
        doc = incident_document(memory)
        await self.store.upsert(doc)
        return doc.id
