"""The embedded document store: one SQLite file, vectors next to the documents, compared with numpy.

One machine, no server. Workers on several machines each keep their own file; a shared memory is
what the Qdrant store (activities/memory_qdrant.py) is for.
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

from activities.memory_documents import Document, MemoryUnavailable
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


class SqliteDocuments:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(SCHEMA)
        except (sqlite3.Error, OSError) as err:
            raise MemoryUnavailable(f"memory file {path}: {err}") from err

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # A connection per use: activities run concurrently, and SQLite connections are not shared.
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.row_factory = sqlite3.Row
            yield db

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def in_thread() -> T:
            try:
                with self._db() as db:
                    return work(db)
            except (sqlite3.Error, OSError) as err:
                raise MemoryUnavailable(f"memory file {self.path}: {err}") from err

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
        where, args = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {', '.join(FIELDS)} FROM documents {where} ORDER BY id", args
            ).fetchall()
        )
        return [Document(**dict(row)) for row in rows]

    async def _embedded(self, ids: list[str], model: str) -> dict[str, bytes]:
        def read(db: sqlite3.Connection) -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            # in chunks: SQLite caps the number of bound parameters
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT id, embedding FROM documents WHERE embedding_model = ? AND embedding IS NOT NULL AND id IN ({marks})"
                found.update((row["id"], row["embedding"]) for row in db.execute(query, (model, *chunk)))
            return found

        return await self._run(read)

    async def missing_vectors(self, docs: list[Document], model: str) -> list[Document]:
        embedded = await self._embedded([d.id for d in docs], model)
        return [d for d in docs if d.id not in embedded]

    async def store_vectors(self, model: str, vectors: Mapping[Document, np.ndarray]) -> None:
        rows = [(v.astype(np.float32).tobytes(), model, d.id, d.digest) for d, v in vectors.items()]
        # The digest guard: a document rewritten meanwhile keeps no vector of its old text.
        await self._run(
            lambda db: db.executemany(
                "UPDATE documents SET embedding = ?, embedding_model = ? WHERE id = ? AND digest = ?", rows
            )
        )

    async def nearest(self, model: str, query: np.ndarray, among: list[Document], limit: int) -> list[str]:
        embedded = await self._embedded([d.id for d in among], model)
        ids = [d.id for d in among if d.id in embedded]
        if not ids:
            return []
        matrix = np.stack([np.frombuffer(embedded[i], np.float32) for i in ids])
        similarity = matrix @ query
        return [ids[i] for i in np.argsort(-similarity)[:limit] if similarity[i] > 0]
