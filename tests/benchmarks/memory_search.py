"""Benchmark: one memory search (BM25 keywords, no embeddings) as memory grows, on each store.

    .venv/bin/python -m tests.benchmarks.memory_search [SIZE ...]     # default 1000 5000

SQLite, the baseline, ranks in process and so reads every document of the kind on each search;
Qdrant ranks on the server and returns only the hits. "qdrant-server" is the test REST server of
tests/memory/fake_qdrant.py (qdrant-client's Python engine behind real HTTP), so it measures the
wire and our queries, not Qdrant's own engine, which is faster still.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from qdrant_client import AsyncQdrantClient

from activities.memory.documents import Document, DocumentStore
from activities.memory.qdrant import QdrantDocuments
from activities.memory.sqlite import SqliteDocuments
from activities.memory.store import MemoryStore
from tests.memory.fake_qdrant import FakeQdrant
from workflows.investigation_models import MemoryQuery

WORDS = [
    "checkout",
    "payments",
    "postgres",
    "redis",
    "kafka",
    "timeout",
    "refused",
    "OOMKilled",
    "disk",
    "space",
    "latency",
    "error",
    "pod",
    "node",
    "deploy",
    "rollout",
    "certificate",
    "expired",
    "dns",
    "lookup",
    "throttled",
    "cpu",
    "memory",
    "leak",
    "crash",
    "loop",
    "config",
    "missing",
]
QUERY = MemoryQuery(text="checkout postgres connection refused timeout", kind="incident")
ROUNDS = 10


def incidents(count: int) -> list[Document]:
    rng = random.Random(7)  # the same memory for every store
    return [
        Document(
            id=f"incident:incident-{i:06d}:2026-01-01T00:00:00+00:00",
            kind="incident",
            title=f"Alert{i % 50} on service{i % 30}: Resolved",
            body="\n".join(" ".join(rng.choices(WORDS, k=12)) for _ in range(8)),
            category="oom",
            outcome="Resolved",
        )
        for i in range(count)
    ]


async def per_search_ms(documents: DocumentStore, docs: list[Document]) -> float:
    for start in range(0, len(docs), 256):
        await documents.upsert(docs[start : start + 256])
    store = MemoryStore(documents)
    await store.search(QUERY)  # warm: collections made, caches filled
    started = time.perf_counter()
    for _ in range(ROUNDS):
        await store.search(QUERY)
    return (time.perf_counter() - started) * 1000 / ROUNDS


async def main(sizes: list[int]) -> None:
    server = FakeQdrant()
    await server.start()
    print(f"{'store':<14} {'documents':>9} {'ms/search':>10}")
    for size in sizes:
        docs = incidents(size)
        with tempfile.TemporaryDirectory() as tmp:
            local = AsyncQdrantClient(path=f"{tmp}/qdrant")
            remote = AsyncQdrantClient(url=server.url, api_key=server.api_key)
            stores: list[tuple[str, DocumentStore]] = [
                ("sqlite", SqliteDocuments(Path(tmp) / "memory.sqlite3")),
                ("qdrant-local", QdrantDocuments(local, "bench", tmp)),
                ("qdrant-server", QdrantDocuments(remote, f"bench-{size}", server.url)),
            ]
            for name, documents in stores:
                print(f"{name:<14} {size:>9} {await per_search_ms(documents, docs):>10.1f}", flush=True)
            await local.close()
            await remote.close()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [1000, 5000]))
