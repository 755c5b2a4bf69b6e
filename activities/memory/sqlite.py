"""The embedded document store: one SQLite file, vectors next to the documents, compared with numpy.

One machine, no server. Workers on several machines each keep their own file; a shared memory is
what the Qdrant store (activities/memory/qdrant.py) is for. Ranking reads every document of the kind
asked for on each search, which is cheap at the size one machine's memory reaches (see the benchmark
in tests/benchmarks/memory_search.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
from rank_bm25 import BM25Plus

from activities.memory.documents import Document, MemoryUnavailable, tokens
from workflows.investigation_models import MemoryKind

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
T = TypeVar("T")
FIELDS = ("id", "kind", "title", "body", "category", "outcome", "source")


def _of_kind(kind: MemoryKind | None) -> tuple[str, tuple[str, ...]]:
    """The SQL condition (and its argument) for one kind of document, or for all of them."""
    return ("kind = ?", (kind,)) if kind else ("1", ())


class SqliteDocuments:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        with self._failing():
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(SCHEMA)

    @contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as err:
            raise MemoryUnavailable(f"memory file {self.path}: {err}") from err

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # A connection per use: activities run concurrently, and SQLite connections are not shared.
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.row_factory = sqlite3.Row
            yield db

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def in_thread() -> T:
            with self._failing(), self._db() as db:
                return work(db)

        return await asyncio.to_thread(in_thread)

    async def upsert(self, docs: list[Document]) -> None:
        now = datetime.now(UTC).isoformat()
        rows = [(*(getattr(d, f) for f in FIELDS), d.digest, now) for d in docs]
        await self._run(
            lambda db: db.executemany(
                """INSERT INTO documents (id, kind, title, body, category, outcome, source, digest, stored_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET
                     title=excluded.title, body=excluded.body, category=excluded.category,
                     outcome=excluded.outcome, source=excluded.source, stored_at=excluded.stored_at,
                     embedding=CASE WHEN digest=excluded.digest THEN embedding END,
                     digest=excluded.digest""",
                rows,
            )
        )

    async def delete(self, ids: list[str]) -> None:
        await self._run(lambda db: db.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in ids]))

    async def documents(self, kind: MemoryKind | None) -> list[Document]:
        same_kind, args = _of_kind(kind)
        query = f"SELECT {', '.join(FIELDS)} FROM documents WHERE {same_kind} ORDER BY id"
        rows = await self._run(lambda db: db.execute(query, args).fetchall())
        return [Document(**dict(row)) for row in rows]

    async def count(self, kind: MemoryKind | None) -> int:
        same_kind, args = _of_kind(kind)
        count: int = await self._run(
            lambda db: db.execute(f"SELECT count(*) FROM documents WHERE {same_kind}", args).fetchone()[0]
        )
        return count

    async def keyword_ranking(self, words: list[str], kind: MemoryKind | None, limit: int) -> list[Document]:
        docs = await self.documents(kind)
        if not docs or not words:
            return []
        corpus = [tokens(d.text) for d in docs]
        # BM25Plus keeps idf positive even in a tiny corpus; only documents sharing a word compete.
        scores = BM25Plus(corpus).get_scores(words)
        wanted = set(words)
        matched = [i for i, doc_words in enumerate(corpus) if wanted & set(doc_words)]
        return [docs[i] for i in sorted(matched, key=lambda i: -scores[i])[:limit]]

    async def unembedded(self, model: str, kind: MemoryKind | None, limit: int) -> list[Document]:
        same_kind, kind_args = _of_kind(kind)
        query = (
            f"SELECT {', '.join(FIELDS)} FROM documents WHERE (embedding IS NULL OR embedding_model != ?) "
            f"AND {same_kind} ORDER BY id LIMIT ?"
        )
        args = (model, *kind_args, limit)
        rows = await self._run(lambda db: db.execute(query, args).fetchall())
        return [Document(**dict(row)) for row in rows]

    async def store_vectors(self, model: str, vectors: Mapping[Document, np.ndarray]) -> None:
        rows = [(v.astype(np.float32).tobytes(), model, d.id, d.digest) for d, v in vectors.items()]
        # The digest guard: a document rewritten meanwhile keeps no vector of its old text.
        await self._run(
            lambda db: db.executemany(
                "UPDATE documents SET embedding = ?, embedding_model = ? WHERE id = ? AND digest = ?", rows
            )
        )

    async def nearest(
        self, model: str, query: np.ndarray, kind: MemoryKind | None, limit: int
    ) -> list[Document]:
        same_kind, kind_args = _of_kind(kind)
        select = (
            f"SELECT {', '.join(FIELDS)}, embedding FROM documents "
            f"WHERE embedding_model = ? AND embedding IS NOT NULL AND {same_kind} ORDER BY id"
        )
        args = (model, *kind_args)
        rows = await self._run(lambda db: db.execute(select, args).fetchall())
        if not rows:
            return []
        similarity = np.stack([np.frombuffer(r["embedding"], np.float32) for r in rows]) @ query
        best = [i for i in np.argsort(-similarity)[:limit] if similarity[i] > 0]
        return [Document(**{f: rows[i][f] for f in FIELDS}) for i in best]
