"""Each benchmark at a tiny size on one shared stack, so that `make bench` does not rot.

The figures are not judged here (they depend on the machine); that each report has every figure
with a baseline and a ratio is.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.benchmarks import incidents, ingest, noop_steps, parked
from tests.benchmarks.harness import BenchStack, Report

pytestmark = pytest.mark.integration
FLOORS = ("the floor", "the loosest floor")


@pytest.fixture(scope="module")
def stack() -> Iterator[BenchStack]:
    with BenchStack.running(noop_steps=2) as running:
        yield running


def assert_figures(report: Report, *names: str) -> None:
    figures = report.as_dict()["figures"]
    for name in names:
        figure = figures[name]
        assert figure["ours"] > 0, (name, figure)
        assert figure["raw"] is not None and figure["raw"] > 0, (name, figure)
        assert figure["ratio"] == round(figure["ours"] / figure["raw"], 2), (name, figure)
    assert report.text().startswith(f"== {report.title}")


async def test_incidents(stack: BenchStack) -> None:
    report = await incidents.measure(stack, n=2, timeout=60)
    assert_figures(
        report,
        "wall time, all approvable",
        "time-to-approvable p50",
        "time-to-approvable p95",
        "CPU per incident",
        "history events to approvable",
        "RSS worker+API",
        *(f"{f} against {which}" for f in ("p95", "p50", "CPU per incident") for which in FLOORS),
    )
    assert (
        report.as_dict()["figures"]["activities before approvable"]["ours"] >= 3
    )  # gather, diagnose, preview
    # Each floor ran real check runs for its two workflows (a failed run raises).
    runs = [note for note in report.notes if note.startswith(FLOORS)]
    assert len(runs) == 2 and all("check runs shared by " in note for note in runs), report.notes


async def test_incidents_approval_first_runs_no_preview(stack: BenchStack) -> None:
    report = await incidents.measure(stack, n=2, timeout=60, approval_first=True)
    assert_figures(report, "time-to-approvable p95", "CPU per incident", "history events to approvable")
    assert report.params["alert"] == "BenchParked"
    assert report.as_dict()["figures"]["activities before approvable"]["ours"] == 2  # gather, diagnose
    assert not any("ansible" in note for note in report.notes), report.notes
    assert not any(name.startswith("p95 against") for name in report.as_dict()["figures"])


async def test_ingest(stack: BenchStack) -> None:
    report = await ingest.measure(stack, singles=4, groups=1, concurrency=2)
    assert_figures(
        report,
        *(
            f"{what}: {f}"
            for what in ("single alerts", "groups of 20")
            for f in ("alerts/s", "latency p50", "latency p99")
        ),
    )


async def test_noop_steps(stack: BenchStack) -> None:
    report = await noop_steps.measure(stack, runs=1)
    assert report.params["steps"] == 2
    assert_figures(report, "duration median", "duration max", "CPU per run")


async def test_parked(stack: BenchStack) -> None:
    report = await parked.measure(stack, n=2, lists=2, timeout=60)
    assert_figures(report, "worker+API RSS", "GET /incidents p50", "GET /incidents p95")
