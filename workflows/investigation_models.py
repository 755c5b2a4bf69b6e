"""Data crossing the boundary between the investigation loop (workflow) and its activities.

The conversation with the model is plain data so every turn lands readably in history: a replay
re-reads the recorded answers instead of calling (and billing) the model again.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from workflows.diagnosis import Diagnosis


class TokenUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: str = Field(default="{}", description="JSON text exactly as the model wrote it")


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None


class ToolSchema(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


class ChatRequest(BaseModel):
    """One model turn. `incident_id` and `step` make the call identifiable in history and logs."""

    incident_id: str
    step: int
    messages: list[ChatMessage]
    tools: list[ToolSchema] = []


class ChatResult(BaseModel):
    content: str | None = None
    tool_calls: list[ToolCall] = []
    finish_reason: str = ""
    model: str = ""
    usage: TokenUsage = TokenUsage()
    latency_ms: float = 0.0


class LLMPolicy(BaseModel):
    """What the worker allows this investigation: read from the worker's settings by `llm.policy`."""

    enabled: bool
    model: str = ""
    step_budget: int = 6
    token_budget: int = 60_000
    output_attempts: int = 2
    confidence_threshold: float = 0.6
    allowed_actions: list[str] = Field(default=[], description="empty: every catalogue action")
    tool_activities: list[str] = Field(default=[], description="read-only tool activities on this worker")
    tool_output_chars: int = 6_000
    chat_timeout_seconds: float = 130.0
    max_tool_calls_per_step: int = 4


# --- read-only tool inputs that have no model elsewhere -----------------------------------------


class PromQuery(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    range_minutes: int = Field(default=0, ge=0, le=24 * 60, description="0: instant query")


class ProbeRequest(BaseModel):
    url: str


# --- memory -------------------------------------------------------------------------------------

MemoryKind = Literal["incident", "runbook"]


class MemoryQuery(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    kind: MemoryKind | None = None
    limit: int = Field(default=5, ge=1, le=20)


class MemoryHit(BaseModel):
    id: str
    kind: MemoryKind
    title: str
    snippet: str
    score: float
    matched_by: list[Literal["bm25", "vector"]] = []
    category: str = Field(default="", description="past incidents: the diagnosed category")
    outcome: str = Field(default="", description="past incidents: the final phase")


class MemoryResult(BaseModel):
    hits: list[MemoryHit] = []
    note: str = Field(default="", description="why retrieval was partial, e.g. embeddings unavailable")


class InvestigationResult(BaseModel):
    """What `investigate` hands back: the diagnosis to plan with and whether a human must decide."""

    diagnosis: Diagnosis
    requires_human: bool = False
    requires_human_reason: str = ""
    fallback_reason: str = Field(default="", description="why the heuristic diagnosis was kept")
    model: str = ""
    usage: TokenUsage = TokenUsage()
    latency_ms: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0
