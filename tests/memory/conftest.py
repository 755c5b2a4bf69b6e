"""Every memory test runs against each store: SQLite, Qdrant's embedded local mode, and a Qdrant
server (tests/memory/fake_qdrant.py) reached over HTTP by the real client. Embeddings come from the
same local OpenAI-compatible server as the LLM tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from activities.config import Settings
from activities.memory.qdrant import QdrantDocuments
from activities.memory.store import MemoryStore, build_store
from tests.llm.conftest import fake_llm
from tests.memory.fake_qdrant import FakeQdrant

__all__ = ["fake_llm"]

BACKENDS = ["sqlite", "qdrant-local", "qdrant-server"]
OpenStore = Callable[..., Awaitable[MemoryStore]]


@pytest.fixture(scope="session")
async def fake_qdrant() -> AsyncIterator[FakeQdrant]:
    server = FakeQdrant()
    await server.start()
    yield server
    await server.stop()


def backend_settings(backend: str, tmp_path: Path, qdrant: FakeQdrant, **overrides: object) -> Settings:
    values: dict[str, object] = {"state_dir": tmp_path / "state", "runbook_dir": tmp_path / "no-runbooks"}
    if backend.startswith("qdrant"):
        values["memory_backend"] = "qdrant"
    if backend == "qdrant-server":
        # one collection per test: the server is shared by the whole session
        values |= {
            "qdrant_url": qdrant.url,
            "qdrant_api_key": qdrant.api_key,
            "qdrant_collection": f"test-{uuid.uuid4().hex[:12]}",
        }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, fake_qdrant: FakeQdrant
) -> AsyncIterator[OpenStore]:
    """Opens the test's memory, as a restarted worker would: the same file, folder or collection."""
    base = backend_settings(request.param, tmp_path, fake_qdrant)
    opened: list[QdrantDocuments] = []

    async def open_(**overrides: object) -> MemoryStore:
        for documents in opened:  # the local mode locks its folder: one client at a time
            await documents.close()
        opened.clear()
        store = build_store(base.model_copy(update=overrides))
        if isinstance(store.documents, QdrantDocuments):
            opened.append(store.documents)
        return store

    yield open_
    for documents in opened:
        await documents.close()
