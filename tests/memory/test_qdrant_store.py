"""The Qdrant store's own promises: one memory for every worker, stale vectors never count, and a
missing, refusing or mismatched server gives a clear error instead of a stall."""

from __future__ import annotations

from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient, models

from activities.memory.documents import MemoryUnavailable
from activities.memory.store import build_store
from tests.benchmarks import memory_search
from tests.diagnosis.test_memory_priors import diagnose, tie
from tests.llm.fake_openai import FakeOpenAI
from tests.memory.conftest import backend_settings
from tests.memory.fake_qdrant import FakeQdrant
from tests.memory.test_memory_store import PAST, embedding, remember
from worker.devserver import free_port
from workflows.investigation_models import MemoryQuery


async def test_every_worker_reads_and_writes_one_memory(fake_qdrant: FakeQdrant, tmp_path: Path) -> None:
    one = build_store(backend_settings("qdrant-server", tmp_path / "a", fake_qdrant))
    collection = one.documents.collection  # type: ignore[attr-defined]
    other = build_store(
        backend_settings("qdrant-server", tmp_path / "b", fake_qdrant, qdrant_collection=collection)
    )

    await remember(one)
    found = await other.search(MemoryQuery(text="payments OOMKilled", kind="incident"))

    assert found.hits[0].id == "incident:incident-a2:2026-03-01T00:00:00+00:00"
    assert len(await other.documents.documents(None)) == len(PAST)


async def test_an_unreachable_server_is_named_and_diagnosis_goes_on_without_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = backend_settings("qdrant-server", tmp_path, FakeQdrant(url=url))
    store = build_store(settings)

    with pytest.raises(MemoryUnavailable, match=rf"^Qdrant at {url}: cannot create the collection: "):
        await store.search(MemoryQuery(text="anything"))
    # memory only nudges the heuristic: without it the evidence still decides
    assert (await diagnose(store, tie())).category == "dependency_down"


async def test_a_wrong_api_key_and_a_server_going_down_are_errors_until_it_answers(
    fake_qdrant: FakeQdrant, tmp_path: Path
) -> None:
    wrong = build_store(backend_settings("qdrant-server", tmp_path, fake_qdrant, qdrant_api_key="nope"))
    with pytest.raises(
        MemoryUnavailable, match=r"create the collection: 401 Unauthorized: Must provide an API key"
    ):
        await wrong.search(MemoryQuery(text="anything"))

    store = build_store(backend_settings("qdrant-server", tmp_path, fake_qdrant))
    await remember(store)
    fake_qdrant.down = True
    try:
        with pytest.raises(MemoryUnavailable, match=r": 503 Service Unavailable: "):
            await store.search(MemoryQuery(text="postgres space", kind="incident"))
    finally:
        fake_qdrant.down = False
    # the activity's retry then finds the server back, with nothing lost
    found = await store.search(MemoryQuery(text="postgres space", kind="incident"))
    assert found.hits[0].category == "disk_full"


async def test_vectors_of_another_dimension_fall_back_to_keywords_and_say_why(
    fake_qdrant: FakeQdrant, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    settings = backend_settings(
        "qdrant-server", tmp_path, fake_qdrant, **embedding(fake_llm, "embed-resized")
    )
    store = build_store(settings)
    await remember(store)
    # the model's collection was made when the same model name returned 3 dimensions
    raw = AsyncQdrantClient(url=fake_qdrant.url, api_key=fake_qdrant.api_key)
    vectors = store.documents.vector_collection("embed-resized")  # type: ignore[attr-defined]
    await raw.create_collection(
        vectors, vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE)
    )
    await raw.close()

    found = await store.search(MemoryQuery(text="postgres No space left on device", kind="incident"))

    assert found.hits[0].category == "disk_full" and found.hits[0].matched_by == ["bm25"]
    assert found.note.startswith(f"vector search unavailable, keywords only: Qdrant at {fake_qdrant.url}: ")
    assert "cannot store vectors" in found.note


async def test_the_search_benchmark_runs_on_every_store(capsys: pytest.CaptureFixture[str]) -> None:
    await memory_search.main([40])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("sqlite", "40"), ("qdrant-local", "40"), ("qdrant-server", "40")]
    assert all(float(r[2]) > 0 for r in rows)
