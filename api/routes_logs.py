"""POST /logs/analyze: logs in (a multipart upload or the raw body), templates and anomalies out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from activities.logs import MAX_TEMPLATES, LineLimits, LogAnalysis, LogFormat, LogFormatError, analyze, decode
from api.auth.deps import ReaderDep
from api.deps import AUTH_RESPONSES

router = APIRouter(tags=["logs"], responses=AUTH_RESPONSES)


async def _upload(form_value: object, field: str) -> tuple[str, bytes] | None:
    if form_value is None:
        return None
    if not isinstance(form_value, UploadFile):
        raise HTTPException(422, f"multipart field {field!r} must be a file upload")
    return form_value.filename or field, await form_value.read()


async def _inputs(request: Request) -> tuple[tuple[str, bytes], tuple[str, bytes] | None]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return ("request body", await request.body()), None
    form = await request.form()
    logs = await _upload(form.get("file"), "file")
    if logs is None:
        raise HTTPException(422, "multipart body needs the logs in a file field named 'file'")
    return logs, await _upload(form.get("baseline"), "baseline")


def _text(source: str, data: bytes) -> str:
    try:
        return decode(data)
    except LogFormatError as err:
        raise HTTPException(422, f"{source}: line {err.line}: {err.reason}") from err


@router.post("/logs/analyze", response_model=LogAnalysis)
async def analyze_logs(
    request: Request,
    _: ReaderDep,
    fmt: Annotated[LogFormat, Query(alias="format", description="text, jsonl, csv or auto")] = "auto",
    max_templates: Annotated[int, Query(ge=1, le=1000)] = MAX_TEMPLATES,
) -> LogAnalysis:
    """Summarise logs into Drain3 templates with counts, first/last seen, `new` flags and anomalies.

    Send the logs as the raw body, or as multipart with a `file` field and an optional `baseline`
    file (the last healthy window) whose templates are then not flagged as new.
    """
    (source, data), baseline = await _inputs(request)
    text = _text(source, data)
    baseline_source, baseline_text = (baseline[0], _text(*baseline)) if baseline else ("baseline", "")
    if not text.strip():
        raise HTTPException(422, f"{source}: no log lines to analyze")
    settings = request.app.state.settings
    limits = LineLimits(settings.logs_max_line_chars, settings.logs_max_lines)
    try:
        # Drain3 is CPU-bound: keep it off the event loop.
        return await run_in_threadpool(
            analyze, source, text, fmt, baseline_text, baseline_source, max_templates, limits
        )
    except LogFormatError as err:
        raise HTTPException(422, str(err)) from err
