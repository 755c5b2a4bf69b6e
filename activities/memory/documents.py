"""What memory holds (closed incidents, runbook sections) and the interface of the stores that hold it.

Two stores implement `DocumentStore`: SQLite (activities/memory/sqlite.py, one file, no server) and
Qdrant (activities/memory/qdrant.py, a server shared by every worker, or its embedded local mode).
Each ranks where its documents are: SQLite in process, Qdrant on the server, so a search moves only
its hits however large memory grows. Rank fusion of the two rankings is activities/memory/store.py's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from workflows.incident_memory import IncidentMemory
from workflows.investigation_models import MemoryKind

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


@dataclass(frozen=True)
class Document:
    id: str
    kind: MemoryKind
    title: str
    body: str
    category: str = ""
    outcome: str = ""
    source: str = ""

    @property
    def digest(self) -> str:
        """Identifies the embedded text: a stored vector is reused only while this is unchanged."""
        return hashlib.sha256(f"{self.title}\n{self.body}".encode()).hexdigest()

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"


class MemoryUnavailable(RuntimeError):
    """The store could not be opened, read or written; activities fail and Temporal retries them.

    A RuntimeError, so that a worker which cannot open its store at start stops with this message."""


class VectorSearchError(Exception):
    """Embeddings or the vector index did not answer usefully; retrieval goes on with keywords alone."""


class DocumentStore(Protocol):
    label: str  # where the documents live, for people: a file, or a Qdrant server or folder

    async def upsert(self, docs: list[Document]) -> None:
        """Insert or replace by id; a changed text needs a new vector."""

    async def delete(self, ids: list[str]) -> None: ...

    async def documents(self, kind: MemoryKind | None) -> list[Document]:
        """Every document of a kind (or all), ordered by id: for syncing and copying, not for search."""

    async def count(self, kind: MemoryKind | None) -> int: ...

    async def keyword_ranking(self, words: list[str], kind: MemoryKind | None, limit: int) -> list[Document]:
        """BM25: documents sharing a word with `words`, best first."""

    async def unembedded(self, model: str, kind: MemoryKind | None, limit: int) -> list[Document]:
        """Up to `limit` documents with no vector from `model` for their current text."""

    async def store_vectors(self, model: str, vectors: Mapping[Document, np.ndarray]) -> None: ...

    async def nearest(
        self, model: str, query: np.ndarray, kind: MemoryKind | None, limit: int
    ) -> list[Document]:
        """By cosine similarity to the unit vector `query`, best first, positive only; a vector made
        from an older text of its document never counts. Raises VectorSearchError when the vector
        index cannot answer."""


def incident_document(memory: IncidentMemory) -> Document:
    """What is worth recalling about a closed incident (workflows/incident_memory.py), as searchable text."""
    closed = memory.closed_at.isoformat() if memory.closed_at else ""
    lines = [
        f"alert {memory.alertname} service {memory.service} severity {memory.severity} "
        f"environment {memory.environment}"
    ]
    if memory.category:
        confidence = f" ({memory.confidence:.2f})" if memory.confidence is not None else ""
        lines.append(f"diagnosis{confidence}: {memory.category}: {memory.diagnosis}")
    if memory.plan:
        lines.append(f"plan: {memory.plan}")
    lines.extend(f"action {a.step} {a.action}: {a.result}" for a in memory.actions)
    lines.append(f"outcome: {memory.outcome}")
    return Document(
        id=f"incident:{memory.incident_id}:{closed}",
        kind="incident",
        title=f"{memory.alertname} on {memory.service or 'unknown service'}: {memory.outcome}",
        body="\n".join(lines),
        category=memory.category,
        outcome=memory.outcome,
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
