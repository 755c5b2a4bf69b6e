"""`llm.chat` and `llm.policy` through the real openai client against the local recorded server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from openai.lib._pydantic import to_strict_json_schema
from temporalio.exceptions import ApplicationError

from activities.llm import RESPONSE_FORMAT, LLMActivities, llm_diagnoser
from tests.llm.conftest import llm_settings
from tests.llm.fake_openai import FakeOpenAI
from worker.devserver import free_port
from workflows.alerts import Alert
from workflows.diagnosis import Diagnosis
from workflows.evidence import Evidence, ProbeResult
from workflows.guardrails import LLMDiagnosis
from workflows.investigation_models import ChatMessage, ChatRequest
from workflows.investigation_tools import TOOLS

REQUEST = ChatRequest(
    incident_id="incident-abc",
    step=1,
    messages=[ChatMessage(role="system", content="investigate"), ChatMessage(role="user", content="alert")],
    tools=[TOOLS["http_probe"].schema()],
)


async def chat_error(fake: FakeOpenAI, tmp_path: Path, recording: str) -> ApplicationError:
    llm = LLMActivities(llm_settings(fake, tmp_path, recording))
    with pytest.raises(ApplicationError) as caught:
        await llm.chat(REQUEST)
    return caught.value


async def test_tool_calls_usage_and_request_shape(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    settings = llm_settings(fake_llm, tmp_path, "tool_loop")
    result = await LLMActivities(settings).chat(REQUEST)

    assert [c.name for c in result.tool_calls] == ["similar_incidents", "http_probe"]
    assert result.tool_calls[1].arguments == '{"reason": "is the health endpoint still failing?"}'
    assert result.finish_reason == "tool_calls"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (
        812,
        64,
        876,
    )
    assert result.latency_ms > 0
    (sent,) = fake_llm.chats(settings.llm_model)
    assert sent["model"] == settings.llm_model
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["tools"][0]["function"]["name"] == "http_probe"
    assert "reason" in sent["tools"][0]["function"]["parameters"]["properties"]


async def test_assistant_tool_calls_go_back_in_wire_format(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    settings = llm_settings(fake_llm, tmp_path, "tool_loop")
    llm = LLMActivities(settings)
    first = await llm.chat(REQUEST)
    follow_up = REQUEST.model_copy(
        update={
            "step": 2,
            "messages": [
                *REQUEST.messages,
                ChatMessage(role="assistant", content=first.content, tool_calls=first.tool_calls),
                *(
                    ChatMessage(role="tool", tool_call_id=c.id, content="ref tool-1\n{}")
                    for c in first.tool_calls
                ),
            ],
        }
    )
    second = await llm.chat(follow_up)

    assert LLMDiagnosis.model_validate_json(second.content or "").category == "dependency_down"
    assistant = fake_llm.chats(settings.llm_model)[1]["messages"][2]
    assert assistant["tool_calls"][0] == {
        "id": "call_1_0",
        "type": "function",
        "function": {"name": "similar_incidents", "arguments": first.tool_calls[0].arguments},
    }


def test_response_schema_is_strict_structured_output() -> None:
    assert RESPONSE_FORMAT["json_schema"]["schema"] == to_strict_json_schema(LLMDiagnosis)


async def test_rate_limit_is_retryable_and_honours_retry_after(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    err = await chat_error(fake_llm, tmp_path, "retry")
    assert (err.type, err.non_retryable) == ("LLMRateLimited", False)
    assert err.next_retry_delay == timedelta(seconds=1)
    assert "tokens per min" in err.message


async def test_server_error_is_retryable_and_the_client_does_not_retry(
    fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    settings = llm_settings(fake_llm, tmp_path, "retry")
    fake_llm.queues[settings.llm_model].pop(0)  # start at the recorded 500
    llm = LLMActivities(settings)
    with pytest.raises(ApplicationError) as caught:
        await llm.chat(REQUEST)
    assert (caught.value.type, caught.value.non_retryable) == ("LLMUnavailable", False)
    # max_retries=0: one HTTP request per activity attempt, the retries belong to Temporal.
    assert len(fake_llm.chats(settings.llm_model)) == 1


@pytest.mark.parametrize(
    ("recording", "kind", "words"),
    [
        ("bad_request", "LLMBadRequest", "Invalid schema"),
        ("quota", "LLMQuotaExhausted", "exceeded your current quota"),
        ("refusal", "LLMRefused", "can't help"),
    ],
)
async def test_errors_that_are_not_retried(
    fake_llm: FakeOpenAI, tmp_path: Path, recording: str, kind: str, words: str
) -> None:
    err = await chat_error(fake_llm, tmp_path, recording)
    assert (err.type, err.non_retryable) == (kind, True)
    assert words in err.message


async def test_wrong_key_is_not_retried(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    llm = LLMActivities(llm_settings(fake_llm, tmp_path, "tool_loop", llm_api_key="wrong"))
    with pytest.raises(ApplicationError) as caught:
        await llm.chat(REQUEST)
    assert (caught.value.type, caught.value.non_retryable) == ("LLMUnauthorized", True)


async def test_unreachable_server_is_retryable(tmp_path: Path) -> None:
    settings = llm_settings(
        FakeOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1"), tmp_path, llm_model="m"
    )
    with pytest.raises(ApplicationError) as caught:
        await LLMActivities(settings).chat(REQUEST)
    assert (caught.value.type, caught.value.non_retryable) == ("LLMUnavailable", False)
    assert "APIConnectionError" in caught.value.message


async def test_not_configured_is_a_clear_non_retryable_error(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    llm = LLMActivities(llm_settings(fake_llm, tmp_path, llm_model=""))
    assert (await llm.policy()).enabled is False
    with pytest.raises(ApplicationError) as caught:
        await llm.chat(REQUEST)
    assert (caught.value.type, caught.value.non_retryable) == ("LLMNotConfigured", True)
    assert "REMEDIATOR_LLM_MODEL" in caught.value.message


async def test_policy_reflects_settings(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    settings = llm_settings(
        fake_llm, tmp_path, llm_model="m", llm_step_budget=3, llm_allowed_actions=["restart-service"]
    )
    policy = await LLMActivities(settings, ["memory.search"]).policy()
    assert (policy.enabled, policy.model, policy.step_budget) == (True, "m", 3)
    assert policy.allowed_actions == ["restart-service"]
    assert policy.tool_activities == ["memory.search"]


async def test_offline_diagnoser_reports_tokens_and_latency(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    """What `remediator eval` uses in LLM mode: no Temporal, evidence replayed, usage reported."""
    settings = llm_settings(fake_llm, tmp_path, "retry")
    fake_llm.queues[settings.llm_model] = fake_llm.queues[settings.llm_model][2:]  # straight to the answer
    diagnose = llm_diagnoser(settings)
    alert = Alert(fingerprint="f1", labels={"alertname": "ServiceDown", "service": "checkout"})
    evidence = Evidence(
        probe=ProbeResult(url="http://checkout/health", ok=False, status=503, error="HTTP 503")
    )
    heuristic = Diagnosis(category="unknown", confidence=0.2, explanation="no rule matched")

    result = await diagnose(alert, evidence, heuristic)

    assert (result.diagnosis.source, result.diagnosis.category) == ("llm", "dependency_down")
    assert result.usage.total_tokens == 1020
    assert result.latency_ms > 0 and result.model_calls == 1
    assert "tools" not in fake_llm.chats(settings.llm_model)[0]  # no recorded tools: none offered


async def test_offline_diagnoser_without_llm_says_so(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    diagnose = llm_diagnoser(llm_settings(fake_llm, tmp_path, llm_model=""))
    alert = Alert(fingerprint="f1", labels={"alertname": "ServiceDown"})
    with pytest.raises(ApplicationError, match="REMEDIATOR_LLM_MODEL"):
        await diagnose(alert, Evidence(), Diagnosis(category="unknown", confidence=0.2, explanation=""))
