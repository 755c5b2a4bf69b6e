"""How much smaller templates are than raw logs, measured on a realistic mixed log of 6000 lines.

Run `pytest -s tests/logs/test_token_reduction.py` to see the figure, or
`remediator logs analyze tests/logs/fixtures/mixed-service.log.gz`. Tokens are estimated as
len(text) // 4 (tiktoken needs to download its vocabulary, which this project cannot rely on).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from activities.logs import analyze
from tests.logs.fixtures.make_mixed_log import generate

FIXTURE = Path(__file__).parent / "fixtures" / "mixed-service.log.gz"


def test_the_shipped_fixture_is_what_the_generator_makes() -> None:
    assert gzip.decompress(FIXTURE.read_bytes()).decode() == generate()


def test_templates_are_a_small_fraction_of_the_raw_tokens() -> None:
    text = gzip.decompress(FIXTURE.read_bytes()).decode()
    result = analyze(FIXTURE.name, text)
    summary = result.summary
    print(
        f"\n{summary.total_lines} lines, {len(text)} chars: raw ~{result.raw_tokens} tokens -> "
        f"{len(summary.templates)} templates ~{result.summary_tokens} tokens "
        f"({result.reduction:.0f}x smaller, len/4 estimate)"
    )
    assert summary.total_lines > 5000
    assert result.reduction >= 50
    assert result.summary_tokens < 4000  # fits any model's context with room to spare
    # What matters survives: the database refusal behind the incident and the Go panic.
    anomalies = " ".join(t.template for t in result.anomalies)
    assert "PSQLException: Connection to postgres-primary.db.svc.cluster.local" in anomalies
    assert "panic: runtime error: invalid memory address" in anomalies
