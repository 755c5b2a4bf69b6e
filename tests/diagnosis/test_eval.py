"""`remediator eval`: the heuristic over tests/scenarios, and malformed scenarios named by file and line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.cli.evaluation import LoadedScenario, ScenarioError, evaluate, load_scenario, load_scenarios
from workflows.diagnosis import DIAGNOSIS_CATEGORIES, DiagnoseRequest, Diagnosis

SCENARIOS = Path(__file__).parents[1] / "scenarios"
runner = CliRunner()

GOOD = """\
name: tmp-oom
alert:
  name: KubePodCrashLooping
  service: checkout
evidence:
  pods:
    - name: checkout-1
      lastState: {reason: OOMKilled, exitCode: 137}
expected: {category: oom}
"""


def test_the_heuristic_reaches_the_bar_on_the_recorded_scenarios() -> None:
    result = runner.invoke(app, ["eval", str(SCENARIOS), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"accuracy", "total", "correct", "cases"}
    assert report["total"] >= 40
    assert report["accuracy"] >= 0.70
    assert report["correct"] == sum(c["ok"] for c in report["cases"])
    assert report["accuracy"] == pytest.approx(report["correct"] / report["total"], abs=1e-4)
    for case in report["cases"]:
        assert set(case) == {"name", "expected", "got", "confidence", "ok"}
        assert case["ok"] == (case["expected"] == case["got"])
        assert 0.0 <= case["confidence"] <= 1.0


@pytest.fixture(scope="module")
def scenarios() -> list[LoadedScenario]:
    return load_scenarios(SCENARIOS)


def test_scenarios_cover_every_category_several_times(scenarios: list[LoadedScenario]) -> None:
    expected = Counter(case.scenario.expected.category for case in scenarios)
    assert set(expected) == set(DIAGNOSIS_CATEGORIES)
    assert min(expected.values()) >= 3


def test_the_table_output_ends_with_the_accuracy() -> None:
    result = runner.invoke(app, ["eval", str(SCENARIOS)])
    assert result.exit_code == 0
    assert "accuracy" in result.stdout.splitlines()[-1]


def test_any_diagnoser_can_be_evaluated(scenarios: list[LoadedScenario]) -> None:
    """The seam the LLM diagnoser plugs into: same scenarios, another callable."""
    seen: list[DiagnoseRequest] = []

    def always_oom(request: DiagnoseRequest) -> Diagnosis:
        seen.append(request)
        return Diagnosis(category="oom", confidence=0.5, explanation="always oom", source="llm")

    report = evaluate(scenarios, always_oom)
    oom_cases = sum(s.scenario.expected.category == "oom" for s in scenarios)
    assert report.correct == oom_cases
    assert len(seen) == len(scenarios)


def test_scenario_logs_reach_the_diagnoser_as_templates() -> None:
    case = load_scenario(SCENARIOS / "deploy-5xx-after-rollout.yaml")
    logs = case.request.evidence.logs
    assert logs is not None and logs.baseline_lines == 3
    new = [t for t in logs.templates if t.new]
    assert any("NullPointerException" in t.template for t in new)
    assert case.request.evidence.metrics[0].kind == "range"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("exitCode: 137", "exitCode: lots"), 8, "exitCode"),
        (GOOD.replace("category: oom", "category: service_down"), 9, "category"),
        (GOOD.replace("  service: checkout\n", "  service: checkout\n  sevrity: high\n"), 5, "sevrity"),
        (GOOD.replace("expected: {category: oom}\n", ""), 1, "expected"),
        (GOOD.replace("    - name: checkout-1", "    - name: [checkout-1"), 8, "flow sequence on line 7"),
        ("- just\n- a list\n", 1, "mapping"),
    ],
)
def test_malformed_scenarios_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, "broken.yaml", text)
    result = runner.invoke(app, ["eval", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{path}:{line}:" in result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.output


def test_bad_json_logs_are_named_at_their_line_in_the_block(tmp_path: Path) -> None:
    text = GOOD.replace(
        "expected:",
        'logs: |\n    {"msg": "fine"}\n    {"msg": "broken"\n'.replace("logs", "  logs") + "expected:",
    )
    path = write(tmp_path, "logs.yaml", text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.line == 11  # the second line of the block
    assert "invalid JSON" in str(caught.value)


def test_duplicate_scenario_names_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    second = write(tmp_path, "b.yaml", GOOD)
    result = runner.invoke(app, ["eval", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{second}:1:" in result.stderr
    assert "also used by" in result.stderr


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(tmp_path / "nope")], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "does not exist" in result.output
