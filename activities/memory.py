"""Incident memory and runbooks: an embedded store (one SQLite file) with hybrid retrieval.

Every closed incident is stored with its alert, diagnosis, actions and outcome; Markdown runbooks
from REMEDIATOR_RUNBOOK_DIR are indexed per section. Retrieval always ranks by keywords (BM25) and,
when REMEDIATOR_EMBEDDING_MODEL names a model, also by cosine similarity of embeddings from an
OpenAI-compatible /embeddings endpoint; the two rankings are merged by reciprocal rank fusion.

Vectors live next to the documents in SQLite and are compared with numpy: one machine, no server.
The seam for a vector server (Qdrant, pgvector) is `_vector_ranking`: a team that outgrows one
machine replaces it with a query to that server; documents and BM25 stay as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import openai
from rank_bm25 import BM25Plus
from temporalio import activity

from activities.llm import make_client
from worker.settings import Settings
from workflows.investigation_models import MemoryHit, MemoryKind, MemoryQuery, MemoryResult
from workflows.models import Alert, IncidentState

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL,
    embedding BLOB,
    embedding_model TEXT NOT NULL DEFAULT '',
    stored_at TEXT NOT NULL
)
"""
RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the head of each ranking
SNIPPET_CHARS = 700
# English glue words, plus the words every stored incident carries (its field names), which would
# otherwise make every incident match every query.
STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "its"),
        *("of", "on", "or", "that", "the", "to", "was", "were", "with", "this"),
        *("alert", "labels", "evidence", "diagnosis", "heuristic", "llm", "plan", "action", "outcome"),
        *("severity", "environment"),
    }
)


def tokens(text: str) -> list[str]:
    """Lower-case words; CamelCase alert names also count as their parts (KubePodCrashLooping)."""
    words: list[str] = []
    for word in re.findall(r"[A-Za-z0-9]+", text):
        parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", word) if word.isalpha() else []
        words.extend(p.lower() for p in ([word, *parts] if len(parts) > 1 else [word]))
    return [w for w in words if w not in STOPWORDS]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Document:
    id: str
    kind: MemoryKind
    title: str
    body: str
    category: str = ""
    outcome: str = ""
    source: str = ""


def incident_document(state: IncidentState) -> Document:
    """What is worth recalling about a closed incident, as searchable text."""
    alert = state.alert
    closed = state.timeline[-1].at.isoformat() if state.timeline else ""
    lines = [
        f"alert {alert.name} service {alert.service} severity {alert.severity} environment {alert.environment}",
        "labels: " + ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())),
        *(f"{k}: {v}" for k, v in sorted(alert.annotations.items())),
        f"evidence: {state.evidence_summary}",
    ]
    if state.diagnosis:
        d = state.diagnosis
        lines.append(f"diagnosis ({d.source}, {d.confidence:.2f}): {d.category}: {d.explanation}")
    if state.plan:
        lines.append(f"plan: {state.plan.summary}")
        for planned in state.plan.actions:
            result = planned.result.summary if planned.result else "not run"
            lines.append(f"action {planned.step} {planned.action.name}: {result}")
    lines.append(f"outcome: {state.phase}")
    return Document(
        id=f"incident:{state.incident_id}:{closed}",
        kind="incident",
        title=f"{alert.name} on {alert.service or 'unknown service'}: {state.phase}",
        body="\n".join(lines),
        category=state.diagnosis.category if state.diagnosis else "",
        outcome=str(state.phase),
    )


def runbook_documents(folder: Path) -> Iterator[Document]:
    """One document per `##` section, each carrying the runbook's title for context."""
    for path in sorted(folder.glob("**/*.md")):
        text = path.read_text(errors="replace")
        title_match = re.search(r"^# (.+)$", text, re.MULTILINE)
        title = title_match.group(1).strip() if title_match else path.stem
        sections = re.split(r"^(?=## )", text, flags=re.MULTILINE)
        for number, section in enumerate(s for s in sections if s.strip()):
            heading = section.splitlines()[0].lstrip("#").strip()
            name = title if heading == title else f"{title} / {heading}"
            relative = path.relative_to(folder).as_posix()
            yield Document(
                id=f"runbook:{relative}#{number}",
                kind="runbook",
                title=name,
                body=f"{title}\n{section}",
                source=relative,
            )


class EmbeddingError(Exception):
    """The embedding endpoint did not answer usefully; retrieval goes on with keywords alone."""


class Embedder:
    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self._client = client
        self.model = model

    async def embed(self, texts: list[str]) -> list[np.ndarray]:
        try:
            response = await self._client.embeddings.create(model=self.model, input=texts)
        except openai.OpenAIError as err:
            raise EmbeddingError(f"{type(err).__name__}: {err}") from err
        vectors = [
            np.asarray(item.embedding, dtype=np.float32)
            for item in sorted(response.data, key=lambda d: d.index)
        ]
        if len(vectors) != len(texts):
            raise EmbeddingError(f"asked for {len(texts)} embeddings, got {len(vectors)}")
        return [v / (np.linalg.norm(v) or 1.0) for v in vectors]


def _rrf(*rankings: list[str]) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


class MemoryStore:
    def __init__(self, path: Path, runbook_dir: Path | None = None, embedder: Embedder | None = None) -> None:
        self._path = path
        self._runbook_dir = runbook_dir
        self._embedder = embedder
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # A connection per use: activities run concurrently, and SQLite connections are not shared.
        with closing(sqlite3.connect(self._path, timeout=30)) as db, db:
            db.row_factory = sqlite3.Row
            yield db

    def upsert(self, doc: Document) -> None:
        """Insert or replace; an unchanged body keeps its embedding."""
        with self._db() as db:
            db.execute(
                """INSERT INTO documents (id, kind, title, body, category, outcome, source, digest, stored_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET
                     title=excluded.title, body=excluded.body, category=excluded.category,
                     outcome=excluded.outcome, source=excluded.source, stored_at=excluded.stored_at,
                     embedding=CASE WHEN digest=excluded.digest THEN embedding END,
                     digest=excluded.digest""",
                (
                    doc.id,
                    doc.kind,
                    doc.title,
                    doc.body,
                    doc.category,
                    doc.outcome,
                    doc.source,
                    _digest(doc.body),
                    datetime.now(UTC).isoformat(),
                ),
            )

    def sync_runbooks(self) -> int:
        """Bring the runbook index in line with the folder: new, changed and deleted sections."""
        if self._runbook_dir is None or not self._runbook_dir.is_dir():
            return 0
        docs = list(runbook_documents(self._runbook_dir))
        for doc in docs:
            self.upsert(doc)
        with self._db() as db:
            known = {row["id"] for row in db.execute("SELECT id FROM documents WHERE kind = 'runbook'")}
            stale = known - {d.id for d in docs}
            db.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in stale])
        return len(docs)

    def _rows(self, kind: MemoryKind | None) -> list[sqlite3.Row]:
        with self._db() as db:
            if kind is None:
                return db.execute("SELECT * FROM documents ORDER BY id").fetchall()
            return db.execute("SELECT * FROM documents WHERE kind = ? ORDER BY id", (kind,)).fetchall()

    async def _vector_ranking(self, query: str, rows: list[sqlite3.Row], limit: int) -> list[str]:
        if self._embedder is None or not rows:
            return []
        model = self._embedder.model
        missing = [r for r in rows if r["embedding"] is None or r["embedding_model"] != model]
        fresh: dict[str, np.ndarray] = {}
        if missing:
            vectors = await self._embedder.embed([f"{r['title']}\n{r['body']}" for r in missing])
            fresh = {r["id"]: v for r, v in zip(missing, vectors, strict=True)}
            with self._db() as db:
                db.executemany(
                    "UPDATE documents SET embedding = ?, embedding_model = ? WHERE id = ?",
                    [(v.tobytes(), model, doc_id) for doc_id, v in fresh.items()],
                )
        (query_vector,) = await self._embedder.embed([query])

        def stored(row: sqlite3.Row) -> np.ndarray:
            return fresh[row["id"]] if row["id"] in fresh else np.frombuffer(row["embedding"], np.float32)

        matrix = np.stack([stored(r) for r in rows])
        similarity = matrix @ query_vector
        order = np.argsort(-similarity)[: limit * 2]
        return [rows[i]["id"] for i in order if similarity[i] > 0]

    async def search(self, query: MemoryQuery) -> MemoryResult:
        if query.kind != "incident":
            await asyncio.to_thread(self.sync_runbooks)
        rows = await asyncio.to_thread(self._rows, query.kind)
        if not rows:
            return MemoryResult(note="memory is empty")
        query_tokens = tokens(query.text)
        corpus = [tokens(f"{r['title']}\n{r['body']}") for r in rows]
        # BM25Plus keeps idf positive even in a tiny corpus; only documents sharing a word compete.
        scores = BM25Plus(corpus).get_scores(query_tokens) if query_tokens else np.zeros(len(rows))
        wanted = set(query_tokens)
        matched = [i for i, words in enumerate(corpus) if wanted & set(words)]
        bm25 = [rows[i]["id"] for i in sorted(matched, key=lambda i: -scores[i])]
        note = ""
        try:
            vector = await self._vector_ranking(query.text, rows, query.limit)
        except EmbeddingError as err:
            vector, note = [], f"vector search unavailable, keywords only: {err}"
        fused = _rrf(bm25, vector)
        by_id = {r["id"]: r for r in rows}
        hits: list[MemoryHit] = []
        for doc_id, score in sorted(fused.items(), key=lambda item: (-item[1], item[0]))[: query.limit]:
            row = by_id[doc_id]
            hit = MemoryHit(
                id=doc_id,
                kind=row["kind"],
                title=row["title"],
                snippet=row["body"][:SNIPPET_CHARS],
                score=round(score, 5),
                category=row["category"],
                outcome=row["outcome"],
            )
            if doc_id in bm25:
                hit.matched_by.append("bm25")
            if doc_id in vector:
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
    return MemoryStore(settings.memory_file, settings.runbook_dir, embedder)


class MemoryActivities:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @activity.defn(name="memory.search")
    async def search(self, query: MemoryQuery) -> MemoryResult:
        return await self.store.search(query)

    @activity.defn(name="memory.record_incident")
    async def record_incident(self, state: IncidentState) -> str:
        """Idempotent: the document id comes from the incident and its closing time, so a retry overwrites."""
        doc = incident_document(state)
        await asyncio.to_thread(self.store.upsert, doc)
        return doc.id
