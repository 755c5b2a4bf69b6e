"""The floor's run sharing (tests/benchmarks/raw.py CheckRuns), with a real process for the run."""

from __future__ import annotations

import asyncio
import sys

from tests.benchmarks.raw import CheckRuns

RUN = [sys.executable, "-c", "import time; time.sleep(0.4)"]


async def callers(runs: CheckRuns) -> list[int]:
    """One caller, then three while its run is in flight, then one after everything ended."""
    first = asyncio.ensure_future(runs.check(0))
    await asyncio.sleep(0.1)
    during = [asyncio.ensure_future(runs.check(i)) for i in range(3)]
    codes = [await first, *await asyncio.gather(*during)]
    codes.append(await runs.check(9))
    return codes


async def test_arrivals_share_the_next_run_never_one_in_flight() -> None:
    runs = CheckRuns(RUN)
    assert await callers(runs) == [0] * 5
    assert runs.sizes == [1, 3, 1] and runs.codes == [0, 0, 0]


async def test_the_loosest_sharing_joins_the_run_in_flight() -> None:
    runs = CheckRuns(RUN, share_in_flight=True)
    assert await callers(runs) == [0] * 5
    assert runs.sizes == [4, 1] and runs.codes == [0, 0]


async def test_a_failed_run_is_recorded() -> None:
    runs = CheckRuns([sys.executable, "-c", "raise SystemExit(3)"])
    assert await runs.check(0) == 3
    assert runs.codes == [3]
