"""`remediator eval DIR --llm` as a user runs it: a real process, the real openai client, the local
OpenAI-compatible server answering from recordings, and each scenario's evidence replayed as tool outputs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from tests.llm.conftest import llm_settings
from tests.llm.fake_openai import FakeOpenAI

SCENARIOS = Path(__file__).parents[1] / "scenarios"
CHOSEN = ("config-missing-env-go", "node-notready", "oom-checkout-crashloop")
REMEDIATOR = str(Path(sys.executable).parent / "remediator")


async def remediator(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}
    process = await asyncio.create_subprocess_exec(
        REMEDIATOR,
        *args,
        env={**clean, "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


def scenario_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir(parents=True)
    for name in CHOSEN:
        shutil.copy(SCENARIOS / f"{name}.yaml", folder)
    return folder


def tool_names(chat: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in chat.get("tools", [])}


def tool_answers(chat: dict[str, Any]) -> list[str]:
    return [m["content"] for m in chat["messages"] if m["role"] == "tool"]


async def test_llm_eval_reports_accuracy_tokens_and_latency(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    settings = llm_settings(fake_llm, tmp_path, "eval_three")
    env = {
        "REMEDIATOR_LLM_BASE_URL": fake_llm.base_url,
        "REMEDIATOR_LLM_API_KEY": "test-key",
        "REMEDIATOR_LLM_MODEL": settings.llm_model,
        "REMEDIATOR_STATE_DIR": str(tmp_path),
    }
    code, out, err = await remediator("eval", str(scenario_dir(tmp_path)), "--json", "--llm", env=env)

    assert code == 0, err
    report = json.loads(out)
    assert (report["accuracy"], report["total"], report["correct"]) == (0.6667, 3, 2)
    assert [(c["name"], c["got"], c["ok"], c["tokens"]) for c in report["cases"]] == [
        ("config-missing-env-go", "crashloop_config", True, 740 + 1350),
        ("node-notready", "node_failure", True, 1000),
        ("oom-checkout-crashloop", "memory_leak", False, 1060 + 1620),
    ]
    assert report["tokens"] == {"total": 5770, "prompt": 5300, "completion": 470, "per_case": 1923.3}
    latencies = [c["latency_ms"] for c in report["cases"]]
    assert all(ms > 0 for ms in latencies) and not any("fallback" in c for c in report["cases"])
    assert report["latency_ms"] == {"mean": round(sum(latencies) / 3, 1), "p95": max(latencies)}

    chats = fake_llm.chats(settings.llm_model)
    assert len(chats) == 5
    # the model is offered the tools its scenario recorded, logs only ever as templates
    assert tool_names(chats[0]) == {"kube_pods", "kube_events", "kube_log_templates", "kube_rollout_history"}
    assert tool_names(chats[2]) == {"kube_pods", "kube_events"}
    assert tool_names(chats[3]) == {
        "prometheus_query",
        "kube_pods",
        "kube_events",
        "kube_log_templates",
        "kube_rollout_history",
    }
    logs, raw = tool_answers(chats[1])
    assert logs.startswith("ref tool-1") and "DATABASE_URL" in logs and "<HEX>" in logs
    assert "no tool 'kube_logs'" in raw
    # a recorded query is answered (whitespace aside), any other is an error the model can read
    recorded, unrecorded = tool_answers(chats[4])
    assert '"value":0.994' in recorded
    assert "no data recorded for this query" in unrecorded and '"value"' not in unrecorded

    # the recording is used up: every case falls back to the heuristic, and the table says so
    code, out, _ = await remediator("eval", str(scenario_dir(tmp_path / "again")), "--llm", env=env)
    assert code == 0 and out.count("(heuristic kept)") == 3
    assert out.splitlines()[-2].startswith("tokens 0 ") and out.splitlines()[-1] == "accuracy 100.0% (3/3)"


async def test_llm_eval_without_an_llm_names_the_settings(tmp_path: Path) -> None:
    code, out, err = await remediator(
        "eval", str(SCENARIOS), "--llm", env={"REMEDIATOR_STATE_DIR": str(tmp_path)}
    )
    assert code != 0 and out == ""
    [line] = err.splitlines()
    assert "REMEDIATOR_LLM_MODEL" in line and "REMEDIATOR_LLM_BASE_URL" in line
