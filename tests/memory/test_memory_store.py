"""Incident memory and runbooks on every store: BM25 always, vectors from a real /embeddings endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import SecretStr

from activities.config import REPO_ROOT
from activities.memory.documents import Document, runbook_documents, tokens
from activities.memory.store import MemoryActivities, MemoryStore, category_priors
from tests.llm.fake_openai import FakeOpenAI
from tests.memory.conftest import OpenStore
from workflows.actions import AnsibleAction
from workflows.alerts import Alert
from workflows.diagnosis import Diagnosis
from workflows.evidence import Evidence
from workflows.incident_memory import IncidentMemory
from workflows.incident_models import IncidentState, TimelineEntry
from workflows.investigation_models import MemoryQuery
from workflows.phases import Phase
from workflows.plans import ActionOutcome, Plan, PlannedAction


def closed_incident(
    fingerprint: str, alert_name: str, service: str, category: str, phase: Phase, summary: str
) -> IncidentState:
    alert = Alert(
        fingerprint=fingerprint,
        labels={"alertname": alert_name, "service": service, "severity": "critical"},
        annotations={"summary": summary},
    )
    action = AnsibleAction(
        name="restart-service", playbook="restart_service.yml", extravars={"service": service}
    )
    return IncidentState(
        incident_id=f"incident-{fingerprint}",
        phase=phase,
        alert=alert,
        evidence_summary=summary,
        diagnosis=Diagnosis(category=category, confidence=0.8, explanation=summary),  # type: ignore[arg-type]
        plan=Plan(summary=f"restart {service}", actions=[PlannedAction(step="restart", action=action)]),
        timeline=[TimelineEntry(at=datetime(2026, 3, 1, tzinfo=UTC), phase=phase, event="closed")],
    )


PAST = [
    closed_incident(
        "a1", "ServiceDown", "checkout", "dependency_down", Phase.RESOLVED, "checkout health answers 503"
    ),
    closed_incident(
        "a2",
        "KubePodCrashLooping",
        "payments",
        "oom",
        Phase.RESOLVED,
        "payments container OOMKilled exit code 137",
    ),
    closed_incident(
        "a3",
        "DiskFull",
        "postgres",
        "disk_full",
        Phase.ESCALATED,
        "No space left on device on /var/lib/postgresql",
    ),
    closed_incident(
        "a4", "ServiceDown", "checkout", "network", Phase.ROLLED_BACK, "checkout health timed out"
    ),
]


async def remember(store: MemoryStore) -> None:
    activities = MemoryActivities(store)
    for state in PAST:
        await activities.record_incident(state)


def test_tokens_split_alert_names_and_drop_glue_words() -> None:
    assert tokens("KubePodCrashLooping on the checkout-7d9f") == [
        "kubepodcrashlooping",
        "kube",
        "pod",
        "crash",
        "looping",
        "checkout",
        "7d9f",
    ]


async def test_keyword_recall_of_past_incidents(open_store: OpenStore) -> None:
    store = await open_store()
    await remember(store)

    found = await store.search(MemoryQuery(text="payments pod OOMKilled again", kind="incident"))

    assert found.hits[0].id == "incident:incident-a2:2026-03-01T00:00:00+00:00"
    assert (found.hits[0].category, found.hits[0].outcome, found.hits[0].matched_by) == (
        "oom",
        "Resolved",
        ["bm25"],
    )
    assert "action restart restart-service" in found.hits[0].snippet
    assert found.note == ""


async def test_recording_twice_keeps_one_document_and_survives_a_restart(open_store: OpenStore) -> None:
    await remember(await open_store())
    await remember(await open_store())  # a retried activity, then a worker restart

    store = await open_store()
    found = await store.search(MemoryQuery(text="postgres space", kind="incident", limit=20))
    assert [h.id for h in found.hits].count("incident:incident-a3:2026-03-01T00:00:00+00:00") == 1
    assert len(await store.documents.documents("incident")) == len(PAST)


async def test_priors_weight_categories_of_similar_incidents(open_store: OpenStore) -> None:
    store = await open_store()
    await remember(store)
    alert = Alert(fingerprint="n1", labels={"alertname": "ServiceDown", "service": "checkout"})

    priors = await store.priors_for(alert)

    # two checkout outages: the resolved one counts fully, the rolled-back one half
    assert set(priors) >= {"dependency_down", "network"}
    assert priors["dependency_down"] > priors["network"] > 0
    assert abs(sum(priors.values()) - 1.0) < 0.01
    assert category_priors([]) == {}


def write_runbooks(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "oom.md").write_text(
        "# OOM kills\n\nIntro.\n\n## Symptoms\nExit code 137, reason OOMKilled.\n\n## Fix\nRaise the limit.\n"
    )
    (folder / "certs.md").write_text("# Certificates\n\n## Expiry\nRenew with certbot before notAfter.\n")


async def test_runbooks_follow_the_folder(tmp_path: Path, open_store: OpenStore) -> None:
    folder = tmp_path / "runbooks"
    write_runbooks(folder)
    store = await open_store(runbook_dir=folder)

    found = await store.search(MemoryQuery(text="container exit code 137", kind="runbook"))
    assert found.hits[0].title == "OOM kills / Symptoms"
    assert found.hits[0].id == "runbook:oom.md#1"

    (folder / "certs.md").write_text("# Certificates\n\n## Expiry\nRenew with cert-manager, not certbot.\n")
    (folder / "oom.md").unlink()
    renewed = await store.search(MemoryQuery(text="renew cert-manager OOMKilled", kind="runbook"))
    assert [h.title for h in renewed.hits] == ["Certificates / Expiry"]
    assert "cert-manager" in renewed.hits[0].snippet


def test_shipped_runbooks_index_by_section() -> None:
    docs = list(runbook_documents(REPO_ROOT / "deploy" / "runbooks"))
    titles = {d.title for d in docs}
    assert "Service down: the health endpoint refuses connections / Remediation" in titles
    assert "OOMKilled containers and memory leaks / Symptoms" in titles
    assert all(d.body.startswith(d.title.split(" / ")[0]) for d in docs)


def embedding(fake_llm: FakeOpenAI, model: str = "embed-small") -> dict[str, object]:
    return {"llm_base_url": fake_llm.base_url, "llm_api_key": SecretStr("test-key"), "embedding_model": model}


async def test_vectors_join_keywords_when_an_embedding_model_is_set(
    open_store: OpenStore, fake_llm: FakeOpenAI
) -> None:
    store = await open_store(**embedding(fake_llm))
    await remember(store)
    before = len(fake_llm.requests)

    found = await store.search(MemoryQuery(text="checkout health answers 503", kind="incident"))

    assert found.hits[0].id == "incident:incident-a1:2026-03-01T00:00:00+00:00"
    assert found.hits[0].matched_by == ["bm25", "vector"]
    # documents are embedded once and kept; later searches embed only the query
    document_batch, query = fake_llm.requests[before:]
    assert (len(document_batch["input"]), query["input"], query["model"]) == (
        4,
        ["checkout health answers 503"],
        "embed-small",
    )
    await store.search(MemoryQuery(text="disk space", kind="incident"))
    assert [len(r["input"]) for r in fake_llm.requests[before + 2 :]] == [1]


async def test_broken_embeddings_fall_back_to_keywords(open_store: OpenStore, fake_llm: FakeOpenAI) -> None:
    store = await open_store(**embedding(fake_llm))
    await remember(store)
    fake_llm.broken_embeddings = True
    try:
        found = await store.search(MemoryQuery(text="postgres No space left on device", kind="incident"))
    finally:
        fake_llm.broken_embeddings = False

    assert found.hits[0].category == "disk_full" and found.hits[0].matched_by == ["bm25"]
    assert found.note.startswith("vector search unavailable, keywords only: InternalServerError")


async def test_empty_memory_says_so(open_store: OpenStore) -> None:
    found = await (await open_store()).search(MemoryQuery(text="anything"))
    assert (found.hits, found.note) == ([], "memory is empty")


async def test_a_vector_of_an_older_text_never_counts(open_store: OpenStore) -> None:
    documents = (await open_store()).documents
    unit = np.asarray([1.0, 0.0, 0.0], dtype=np.float32)
    old = Document(id="runbook:disk.md#0", kind="runbook", title="Disk", body="clean /var/log")
    await documents.upsert([old])
    assert await documents.unembedded("m", "runbook", 10) == [old]
    await documents.store_vectors("m", {old: unit})
    assert await documents.unembedded("m", None, 10) == []
    assert await documents.nearest("m", unit, "runbook", 5) == [old]
    assert await documents.nearest("m", unit, "incident", 5) == []

    new = Document(id=old.id, kind="runbook", title="Disk", body="grow the volume instead")
    await documents.upsert([new])
    assert await documents.unembedded("m", "runbook", 10) == [new]
    assert await documents.nearest("m", unit, "runbook", 5) == []
    await documents.store_vectors("m", {old: unit})  # a late write of the old text's vector
    assert await documents.unembedded("m", "runbook", 10) == [new]
    assert await documents.nearest("m", unit, "runbook", 5) == []

    await documents.store_vectors("m", {new: unit})
    assert await documents.nearest("m", unit, None, 5) == [new]
    await documents.delete([new.id])
    assert (await documents.documents("runbook"), await documents.count(None)) == ([], 0)
    assert await documents.nearest("m", unit, None, 5) == []


async def test_memory_keeps_only_what_diagnosis_needs(open_store: OpenStore) -> None:
    store = await open_store()
    state = closed_incident(
        "m1", "ServiceDown", "checkout", "dependency_down", Phase.RESOLVED, "checkout health answers 503"
    )
    planned = state.plan.actions[0] if state.plan else None
    assert planned is not None
    planned.result = ActionOutcome(
        ok=True, summary="restarted checkout", diff="-DIFF-LINE\n+DIFF-LINE", details={"stdout": "TRANSCRIPT"}
    )
    state = state.model_copy(
        update={
            "alert": state.alert.model_copy(
                update={"annotations": {"description": "ANNOTATION-TEXT " * 4000, "probe_url": "http://x"}}
            ),
            "evidence_summary": "EVIDENCE-BLOB",
            "evidence": Evidence(notes=["EVIDENCE-NOTE " * 1000]),
        }
    )
    memory = IncidentMemory.of(state)
    assert memory.model_dump(exclude_defaults=True).keys() >= {"alertname", "diagnosis", "actions", "outcome"}
    activities = MemoryActivities(store)
    await activities.record_incident(memory)
    await activities.record_incident(state)  # a whole state (scheduled by an older workflow) is trimmed too
    [doc] = await store.documents.documents("incident")
    for leaked in ("ANNOTATION-TEXT", "EVIDENCE", "DIFF-LINE", "TRANSCRIPT", "probe_url"):
        assert leaked not in doc.body and leaked not in doc.title, leaked
    assert doc.title == "ServiceDown on checkout: Resolved" and doc.category == "dependency_down"
    assert "dependency_down: checkout health answers 503" in doc.body
    assert "action restart restart-service: restarted checkout" in doc.body
    assert len(doc.body) < 600
