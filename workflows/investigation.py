"""The durable LLM investigation: the model reasons, read-only tools answer, guardrails decide.

Each model turn (`llm.chat`) and each tool call is its own activity, so a replay or a worker crash
neither re-bills the model nor changes what it saw, and every step with the model's stated reason is
readable in history and in the incident's timeline. The loop is bounded by a step budget (tool
rounds), a token budget and a number of attempts at a valid structured answer; whenever the model
cannot deliver, the incident goes on with the heuristic diagnosis and says why.

The loop itself (`Investigator`) runs activities through a `Runner`, so the same code serves the
workflow (`investigate`) and the offline evaluation (activities.llm.llm_diagnoser). What the model
may read is in workflows/investigation_tools.py, what it is told in workflows/investigation_prompt.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.activity_names import LLM_CHAT, LLM_POLICY, MEMORY_SEARCH
from workflows.activity_options import LLM_RETRY, POLICY_TIMEOUT, TOOL_RETRY, TOOL_TIMEOUT
from workflows.alerts import Alert
from workflows.diagnosis import Diagnosis, EvidenceRef, ProposedAction
from workflows.evidence import Evidence
from workflows.failures import error_text
from workflows.guardrails import Checked, LLMDiagnosis, check
from workflows.investigation_models import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    InvestigationResult,
    LLMPolicy,
    MemoryQuery,
    MemoryResult,
    TokenUsage,
    ToolCall,
)
from workflows.investigation_prompt import data_block, system_prompt
from workflows.investigation_tools import TOOLS, Tool

T = TypeVar("T")
Record = Callable[[str, str], None]

MEMORY_HITS = 3


# --- running activities ---------------------------------------------------------------------------


class StepFailed(Exception):
    """An activity of the investigation failed for good (after Temporal's retries)."""


class Runner(Protocol):
    async def __call__(
        self,
        activity: str,
        arg: BaseModel | None,
        result_type: type[T],
        timeout: timedelta,
        retry: RetryPolicy,
        summary: str = "",
    ) -> T: ...


async def workflow_runner(
    activity: str,
    arg: BaseModel | None,
    result_type: type[T],
    timeout: timedelta,
    retry: RetryPolicy,
    summary: str = "",
) -> T:
    """Runs an activity from workflow code; the summary is what the Web UI shows on that event."""
    try:
        result: T = await workflow.execute_activity(
            activity,
            *([arg] if arg is not None else []),
            result_type=result_type,
            start_to_close_timeout=timeout,
            retry_policy=retry,
            summary=summary[:200] or None,
        )
    except ActivityError as err:
        raise StepFailed(error_text(err)) from err
    return result


# --- the loop ---------------------------------------------------------------------------------------


class Investigator:
    # A plain class: a dataclass in a sandboxed module is built again for every run (worker/sandbox.py).
    def __init__(self, run: Runner, record: Record, policy: LLMPolicy, incident_id: str) -> None:
        self.run = run
        self.record = record
        self.policy = policy
        self.incident_id = incident_id
        self.sources: dict[str, str] = {}
        self.usage = TokenUsage()
        self.latency_ms = 0.0
        self.model_calls = 0
        self.tool_calls = 0

    def _tools(self, alert: Alert) -> list[Tool]:
        available = set(self.policy.tool_activities)
        return [t for t in TOOLS.values() if t.activity in available and t.needs(alert)]

    def _result(self, diagnosis: Diagnosis, **extra: Any) -> InvestigationResult:
        return InvestigationResult(
            diagnosis=diagnosis,
            model=self.policy.model,
            usage=self.usage,
            latency_ms=round(self.latency_ms, 1),
            model_calls=self.model_calls,
            tool_calls=self.tool_calls,
            **extra,
        )

    def _fallback(self, heuristic: Diagnosis, why: str) -> InvestigationResult:
        self.record("LLM diagnosis abandoned, heuristic kept", why)
        return self._result(heuristic, fallback_reason=why)

    def _clip(self, text: str) -> str:
        limit = self.policy.tool_output_chars
        return text if len(text) <= limit else text[:limit] + f" ... [{len(text) - limit} characters cut]"

    async def _memory(self, alert: Alert) -> str:
        if MEMORY_SEARCH not in self.policy.tool_activities:
            return ""
        text = " ".join([alert.name, alert.service, *alert.annotations.values()])
        try:
            found = await self.run(
                MEMORY_SEARCH,
                MemoryQuery(text=text[:4000], limit=MEMORY_HITS),
                MemoryResult,
                TOOL_TIMEOUT,
                TOOL_RETRY,
                "similar incidents and runbooks",
            )
        except StepFailed as err:
            self.record("memory search failed", str(err))
            return ""
        if not found.hits:
            return ""
        self.record("memory recalled", "; ".join(f"{h.kind} {h.title}" for h in found.hits))
        self.sources["memory"] = self._clip(found.model_dump_json(exclude_defaults=True))
        return data_block("memory: past incidents and runbook sections", self.sources["memory"], "memory")

    async def _call_tool(
        self, call: ToolCall, alert: Alert, tools: dict[str, Tool], spent: bool
    ) -> ChatMessage:
        self.tool_calls += 1
        ref = f"tool-{self.tool_calls}"
        output = await self._tool_output(call, alert, tools, spent, ref)
        self.sources[ref] = output
        return ChatMessage(role="tool", tool_call_id=call.id, content=f"ref {ref}\n{output}")

    async def _tool_output(
        self, call: ToolCall, alert: Alert, tools: dict[str, Tool], spent: bool, ref: str
    ) -> str:
        tool = tools.get(call.name)
        if spent:
            self.record(f"tool call {call.name[:60]!r} not run", "the step budget is spent")
            return "not run: the step budget is spent; give your final answer now"
        if tool is None:
            self.record(f"tool call {call.name[:60]!r} refused", "no such read-only tool")
            return f"error: no tool {call.name[:60]!r}; the tools are {', '.join(tools) or 'none'}"
        try:
            args = tool.args.model_validate_json(call.arguments)
            arg = tool.build(args, alert)
        except ValidationError as err:
            self.record(f"tool call {tool.name} refused", f"malformed arguments: {err.errors()[0]['msg']}")
            return f"error: malformed arguments: {err}"
        shown = args.model_dump(exclude={"reason"}, exclude_defaults=True)
        self.record(f"{ref}: {tool.name}", f"reason: {args.reason[:500]}" + (f"; {shown}" if shown else ""))
        try:
            result = await self.run(
                tool.activity, arg, tool.result_type, TOOL_TIMEOUT, TOOL_RETRY, f"{tool.name}: {args.reason}"
            )
        except StepFailed as err:
            self.record(f"{ref} failed", str(err))
            return f"error: {err}"
        return self._clip(result.model_dump_json(exclude_defaults=True))

    async def _prompt(self, alert: Alert, evidence: Evidence, heuristic: Diagnosis) -> list[ChatMessage]:
        self.sources["evidence"] = self._clip(evidence.model_dump_json(exclude_defaults=True))
        alert_data = alert.model_dump_json(include={"labels", "annotations", "status", "starts_at", "source"})
        blocks = [
            data_block("alert", alert_data),
            data_block("evidence gathered so far", self.sources["evidence"], "evidence"),
            await self._memory(alert),
            # The heuristic's explanation quotes alert text, so it is data as well.
            data_block(
                "rule-based diagnosis: a prior, it may be wrong",
                heuristic.model_dump_json(exclude_defaults=True),
            ),
        ]
        return [
            ChatMessage(role="system", content=system_prompt(self.policy)),
            ChatMessage(role="user", content="\n\n".join(b for b in blocks if b)),
        ]

    async def _turn(self, messages: list[ChatMessage], tools: list[Tool]) -> ChatResult:
        """One model call; its answer joins the conversation and its cost the budget."""
        self.model_calls += 1
        request = ChatRequest(
            incident_id=self.incident_id,
            step=self.model_calls,
            messages=messages,
            tools=[t.schema() for t in tools],
        )
        timeout = timedelta(seconds=self.policy.chat_timeout_seconds)
        result = await self.run(
            LLM_CHAT, request, ChatResult, timeout, LLM_RETRY, f"model turn {self.model_calls}"
        )
        self.usage += result.usage
        self.latency_ms += result.latency_ms
        did = f"{len(result.tool_calls)} tool calls" if result.tool_calls else "answered"
        said = f"; says: {result.content[:300]}" if result.tool_calls and result.content else ""
        cost = f"{result.usage.total_tokens} tokens, {result.latency_ms / 1000:.1f} s"
        self.record(f"model turn {self.model_calls}", f"{did}; {cost}{said}")
        messages.append(ChatMessage(role="assistant", content=result.content, tool_calls=result.tool_calls))
        return result

    async def _run_tools(
        self, calls: list[ToolCall], alert: Alert, tools: dict[str, Tool], spent: bool
    ) -> list[ChatMessage]:
        """Every call gets an answer (the API requires one per call id); at most a few really run."""
        limit = self.policy.max_tool_calls_per_step
        answers = list(
            await asyncio.gather(*(self._call_tool(c, alert, tools, spent) for c in calls[:limit]))
        )
        answers += [
            ChatMessage(role="tool", tool_call_id=c.id, content="not run: too many calls")
            for c in calls[limit:]
        ]
        return answers

    def _parse(self, content: str | None, attempt: int, messages: list[ChatMessage]) -> LLMDiagnosis | None:
        """The structured answer, or None after asking the model to repair what failed validation."""
        try:
            return LLMDiagnosis.model_validate_json(content or "")
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:5])
        self.record(f"invalid answer (attempt {attempt} of {self.policy.output_attempts})", problems[:500])
        repair = f"That answer does not match the response schema ({problems}). Answer again with only the JSON object."
        messages.append(ChatMessage(role="user", content=repair))
        return None

    async def investigate(
        self, alert: Alert, evidence: Evidence, heuristic: Diagnosis
    ) -> InvestigationResult:
        policy = self.policy
        tools = {t.name: t for t in self._tools(alert)}
        self.record(
            "LLM investigation started",
            f"model {policy.model}; tools: {', '.join(tools) or 'none'}; budgets: {policy.step_budget} "
            f"tool rounds, {policy.token_budget} tokens",
        )
        messages = await self._prompt(alert, evidence, heuristic)
        # Every turn either spends a tool round or an answer attempt, so the loop is bounded by
        # step_budget + output_attempts turns, and by the token budget before that.
        rounds = attempts = 0
        while attempts < policy.output_attempts:
            if self.usage.total_tokens >= policy.token_budget:
                spent_tokens = f"token budget spent: {self.usage.total_tokens} of {policy.token_budget}"
                return self._fallback(heuristic, spent_tokens)
            spent = rounds >= policy.step_budget
            try:
                result = await self._turn(messages, [] if spent else list(tools.values()))
            except StepFailed as err:
                return self._fallback(heuristic, f"the model call failed: {err}")
            if result.tool_calls:
                messages.extend(await self._run_tools(result.tool_calls, alert, tools, spent))
                if spent:
                    attempts += 1  # asking for tools once they are withheld is a failed answer
                else:
                    rounds += 1
                continue
            attempts += 1
            answer = self._parse(result.content, attempts, messages)
            if answer is not None:
                return self._accept(
                    check(answer, alert, self.sources, policy.allowed_actions, policy.confidence_threshold)
                )
        return self._fallback(heuristic, f"no valid structured answer after {attempts} attempts")

    def _accept(self, checked: Checked) -> InvestigationResult:
        for drop in checked.drops:
            self.record("guardrail dropped", str(drop))
        answer = checked.answer
        if checked.requires_human:
            self.record("human approval required", checked.requires_human_reason)
        diagnosis = Diagnosis(
            category=answer.category,
            confidence=answer.confidence,
            explanation=answer.summary,
            source="llm",
            summary=answer.summary,
            evidence=[EvidenceRef(ref=e.ref, quote=e.quote) for e in answer.evidence],
            proposed_actions=[
                ProposedAction(name=a.action, args=a.arguments, reason=a.reason) for a in checked.actions
            ],
            risks=answer.risks,
            next_checks=answer.next_checks,
        )
        return self._result(
            diagnosis,
            requires_human=checked.requires_human,
            requires_human_reason=checked.requires_human_reason,
        )


async def investigate(
    alert: Alert, evidence: Evidence, heuristic: Diagnosis, record: Record
) -> InvestigationResult:
    """The workflow's entry point: the heuristic diagnosis unless the worker has an LLM configured."""
    try:
        policy = await workflow_runner(LLM_POLICY, None, LLMPolicy, POLICY_TIMEOUT, TOOL_RETRY, "LLM policy")
    except StepFailed as err:
        record("LLM policy unavailable, heuristic kept", str(err))
        return InvestigationResult(diagnosis=heuristic, fallback_reason=str(err))
    if not policy.enabled:
        return InvestigationResult(diagnosis=heuristic)
    return await Investigator(workflow_runner, record, policy, workflow.info().workflow_id).investigate(
        alert, evidence, heuristic
    )
