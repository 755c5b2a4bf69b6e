"""Past incidents as priors of the heuristic: they break near ties, never decide alone, and say so."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.diagnosis import MEMORY_WEIGHT, MIN_CONFIDENCE, DiagnosisActivities, heuristic_diagnosis, rank
from activities.memory.sqlite import SqliteDocuments
from activities.memory.store import MemoryActivities, MemoryStore
from tests.diagnosis.support import instant, request
from tests.memory.test_memory_store import closed_incident
from workflows.diagnosis import DiagnoseRequest, Diagnosis
from workflows.phases import Phase

# A refused connection to postgres (dependency_down, 0.6) and a name that does not resolve (network,
# 0.6): on the evidence alone, a tie.
TIE = (
    "2024-05-01T10:20:00Z ERROR dial tcp 10.0.0.7:5432: connect: connection refused (postgres.shop.svc:5432)\n"
    "2024-05-01T10:20:01Z ERROR lookup payments.shop.svc on 10.96.0.10:53: no such host\n"
)


def tie(alert: str = "CheckoutErrors") -> DiagnoseRequest:
    return request(alert=alert, service="checkout", logs=TIE)


async def diagnose(store: MemoryStore | None, req: DiagnoseRequest) -> Diagnosis:
    diagnosis: Diagnosis = await ActivityEnvironment().run(DiagnosisActivities(store).diagnose, req)
    return diagnosis


async def remember(store: MemoryStore, *past: tuple[str, str, Phase]) -> None:
    for fingerprint, category, phase in past:
        state = closed_incident(fingerprint, "CheckoutErrors", "checkout", category, phase, "checkout errors")
        await MemoryActivities(store).record_incident(state)


def test_a_near_tie_without_memory() -> None:
    top, second = rank(tie())[:2]
    assert {top.category, second.category} == {"dependency_down", "network"}
    assert abs(top.confidence - second.confidence) < 0.05


async def test_similar_past_incidents_break_the_tie_and_the_explanation_says_so(tmp_path: Path) -> None:
    store = MemoryStore(SqliteDocuments(tmp_path / "memory.sqlite3"))
    alone = await diagnose(store, tie())  # empty memory: the evidence alone
    assert alone.category == "dependency_down" and "past incidents" not in alone.explanation

    await remember(store, ("p1", "network", Phase.RESOLVED), ("p2", "network", Phase.RESOLVED))
    recalled = await diagnose(store, tie())

    assert recalled.category == "network"
    assert (
        "similar past incidents tipped it: 100% of similar past incidents were network"
        in recalled.explanation
    )
    assert "on evidence alone dependency_down led at 0.60" in recalled.explanation
    assert all(ref.ref != "memory" for ref in recalled.evidence)  # a prior, not evidence
    assert recalled.confidence < 0.6 + MEMORY_WEIGHT


async def test_resolved_incidents_outweigh_those_that_were_not(tmp_path: Path) -> None:
    store = MemoryStore(SqliteDocuments(tmp_path / "memory.sqlite3"))
    await remember(store, ("r1", "network", Phase.RESOLVED), ("f1", "dependency_down", Phase.ROLLED_BACK))
    priors = await store.priors_for(tie().alert)
    assert priors["network"] > priors["dependency_down"] > 0
    assert (await diagnose(store, tie())).category == "network"


def test_memory_never_decides_alone() -> None:
    everything = {"oom": 0.5, "network": 0.5}
    nothing = heuristic_diagnosis(request(alert="CheckoutErrors"), everything)  # no evidence at all
    assert nothing.category == "unknown"
    # decisive evidence stands against a memory that is all of another category
    oom = request(pods=[{"name": "p-1", "lastState": {"reason": "OOMKilled", "exitCode": 137}}])
    kept = heuristic_diagnosis(oom, {"disk_full": 1.0, "network": 1.0})
    assert kept.category == "oom" and "past incidents" not in kept.explanation
    # nor lifts a category whose own evidence stays under the bar (x509 failing, but the cert is valid)
    weak = request(
        logs="2024-05-01T10:20:00Z ERROR x509: certificate signed by unknown authority\n",
        metrics=[instant("probe_ssl_earliest_cert_expiry - time()", 60 * 86400)],
    )
    [cert] = rank(weak)
    assert cert.category == "cert_expiry" and 0.1 < cert.confidence < MIN_CONFIDENCE
    assert heuristic_diagnosis(weak, {"cert_expiry": 1.0}).category == "unknown"
