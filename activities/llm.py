"""The LLM client: OpenAI or any OpenAI-compatible server, one chat turn per activity.

The client never retries (`max_retries=0`): Temporal's retry policy is the only retry loop, so a
rate limit or a 5xx shows up in history as an attempt and a replay never calls the model again.
Errors carry their retry meaning: rate limits, 5xx and connection trouble are retryable; a bad
request, missing credentials, an exhausted quota or refused content are not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel, SecretStr
from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from activities.config import Settings
from activities.errors import PermanentError, TemporaryError
from workflows.activity_names import LLM_CHAT, LLM_POLICY
from workflows.alerts import Alert
from workflows.diagnosis import Diagnosis
from workflows.error_types import ErrorType
from workflows.evidence import Evidence
from workflows.guardrails import LLMDiagnosis
from workflows.investigation import Investigator, Record, StepFailed
from workflows.investigation_models import (
    ChatRequest,
    ChatResult,
    InvestigationResult,
    LLMPolicy,
    TokenUsage,
    ToolCall,
)

if TYPE_CHECKING:  # the client is imported where it is used: ~45 MB a worker with no model never needs
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionMessageParam, ChatCompletionToolUnionParam
    from openai.types.shared_params import ResponseFormatJSONSchema

T = TypeVar("T")

NOT_CONFIGURED = (
    "no LLM is configured: set REMEDIATOR_LLM_MODEL (and REMEDIATOR_LLM_BASE_URL and REMEDIATOR_LLM_API_KEY "
    "for a server other than OpenAI)"
)
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "diagnosis", "strict": True, "schema": LLMDiagnosis.model_json_schema()},
}


def activity_names(functions: Iterable[Callable[..., Any]]) -> list[str]:
    """The names under which `@activity.defn` registered these functions."""
    return [str(activity._Definition.must_from_callable(fn).name) for fn in functions]


def make_client(base_url: str, api_key: SecretStr, timeout: float) -> openai.AsyncOpenAI:
    import openai

    # Local servers (Ollama, llama.cpp) need no key, but the client insists on one.
    return openai.AsyncOpenAI(
        base_url=base_url or None,
        api_key=api_key.get_secret_value() or "unused",
        timeout=timeout,
        max_retries=0,
    )


def _retry_after(err: openai.APIStatusError) -> timedelta | None:
    try:
        seconds = float(err.response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return timedelta(seconds=min(max(seconds, 0.0), 300.0))


def as_application_error(err: openai.OpenAIError, what: str) -> ApplicationError:
    """Map an OpenAI client error onto Temporal's retry vocabulary."""
    import openai

    detail = f"{what}: {type(err).__name__}: {err}"
    if isinstance(err, openai.APIConnectionError):  # includes timeouts
        return TemporaryError(detail, type=ErrorType.LLM_UNAVAILABLE)
    if isinstance(err, openai.RateLimitError):
        if err.code == "insufficient_quota":
            return PermanentError(detail, type=ErrorType.LLM_QUOTA_EXHAUSTED)
        return TemporaryError(detail, type=ErrorType.LLM_RATE_LIMITED, delay=_retry_after(err))
    if isinstance(err, openai.InternalServerError | openai.ConflictError):
        return TemporaryError(detail, type=ErrorType.LLM_UNAVAILABLE)
    if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
        return PermanentError(detail, type=ErrorType.LLM_UNAUTHORIZED)
    if isinstance(err, openai.BadRequestError) and err.code in {"content_filter", "content_policy_violation"}:
        return PermanentError(detail, type=ErrorType.LLM_REFUSED)
    # 400, 404 (unknown model), 422 and anything unexpected: the same request would fail again.
    return PermanentError(detail, type=ErrorType.LLM_BAD_REQUEST)


def chat_result(completion: ChatCompletion, latency_ms: float) -> ChatResult:
    if not completion.choices:
        raise TemporaryError("the model answered with no choices", type=ErrorType.LLM_BAD_RESPONSE)
    choice = completion.choices[0]
    message = choice.message
    if message.refusal or choice.finish_reason == "content_filter":
        raise PermanentError(
            f"the model refused: {message.refusal or 'content filter'}", type=ErrorType.LLM_REFUSED
        )
    usage = completion.usage
    return ChatResult(
        content=message.content,
        tool_calls=[
            ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments or "{}")
            for call in message.tool_calls or []
            if call.type == "function"
        ],
        finish_reason=choice.finish_reason or "",
        model=completion.model,
        usage=TokenUsage(
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            total_tokens=usage.total_tokens if usage else 0,
        ),
        latency_ms=round(latency_ms, 1),
    )


class LLMActivities:
    """`llm.policy` tells the workflow what this worker allows; `llm.chat` is one model turn."""

    def __init__(self, settings: Settings, tool_activities: Collection[str] = ()) -> None:
        self._settings = settings
        self._tool_activities = sorted(tool_activities)
        self._client = (
            make_client(settings.llm_base_url, settings.llm_api_key, settings.llm_timeout_seconds)
            if settings.llm_configured
            else None
        )

    @activity.defn(name=LLM_POLICY)
    async def policy(self) -> LLMPolicy:
        s = self._settings
        return LLMPolicy(
            enabled=s.llm_configured,
            model=s.llm_model,
            step_budget=s.llm_step_budget,
            token_budget=s.llm_token_budget,
            output_attempts=s.llm_output_attempts,
            confidence_threshold=s.llm_confidence_threshold,
            allowed_actions=s.llm_allowed_actions,
            tool_activities=self._tool_activities,
            tool_output_chars=s.llm_tool_output_chars,
            # The client's own timeout fires first, so the failure says what timed out.
            chat_timeout_seconds=s.llm_timeout_seconds + 10,
        )

    @activity.defn(name=LLM_CHAT)
    async def chat(self, request: ChatRequest) -> ChatResult:
        if self._client is None:
            raise PermanentError(NOT_CONFIGURED, type=ErrorType.LLM_NOT_CONFIGURED)
        messages = [m.model_dump(exclude_none=True, exclude_defaults=True) for m in request.messages]
        for message in messages:
            for call in message.get("tool_calls", []):
                # The wire format nests the name and arguments under "function".
                call["type"] = "function"
                call["function"] = {"name": call.pop("name"), "arguments": call.pop("arguments", "{}")}
        tools = [{"type": "function", "function": t.model_dump()} for t in request.tools]
        import openai  # loaded already: make_client imported it

        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(
                model=self._settings.llm_model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                tools=cast("list[ChatCompletionToolUnionParam]", tools) or openai.omit,
                response_format=cast("ResponseFormatJSONSchema", RESPONSE_FORMAT),
                # No temperature: reasoning models refuse any but their own, and replays read history anyway.
            )
        except openai.OpenAIError as err:
            raise as_application_error(err, f"{request.incident_id} step {request.step}") from err
        return chat_result(completion, (time.perf_counter() - started) * 1000)


Handler = Callable[..., Awaitable[Any]]


class DirectRunner:
    """Runs the investigation's activities in-process, without Temporal (and so without retries)."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._handlers = handlers

    async def __call__(
        self,
        activity: str,
        arg: BaseModel | None,
        result_type: type[T],
        timeout: timedelta,
        retry: RetryPolicy,
        summary: str = "",
    ) -> T:
        handler = self._handlers.get(activity)
        if handler is None:
            raise StepFailed(f"{activity} is not available here")
        try:
            result: T = await asyncio.wait_for(
                handler() if arg is None else handler(arg), timeout.total_seconds()
            )
        except (ApplicationError, TimeoutError) as err:
            raise StepFailed(f"{type(err).__name__}: {err}") from err
        return result


def llm_diagnoser(
    settings: Settings, tools: Mapping[str, Handler] | None = None, record: Record | None = None
) -> Callable[[Alert, Evidence, Diagnosis], Awaitable[InvestigationResult]]:
    """The investigation outside a workflow, for `remediator eval`: the result carries tokens and latency.

    `tools` maps tool activity names (e.g. "metrics.query") to handlers answering from recorded
    evidence; without them the model reasons over the gathered evidence alone.
    """
    llm = LLMActivities(settings, tool_activities=list(tools or {}))
    runner = DirectRunner({"llm.chat": llm.chat, **(tools or {})})

    async def diagnose(alert: Alert, evidence: Evidence, heuristic: Diagnosis) -> InvestigationResult:
        policy = await llm.policy()
        if not policy.enabled:
            raise PermanentError(NOT_CONFIGURED, type=ErrorType.LLM_NOT_CONFIGURED)
        investigator = Investigator(
            runner, record or (lambda event, detail: None), policy, f"eval-{alert.fingerprint}"
        )
        return await investigator.investigate(alert, evidence, heuristic)

    return diagnose
