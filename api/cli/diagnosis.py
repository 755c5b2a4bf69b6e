"""`remediator eval DIR` and `remediator logs analyze FILE`: diagnosis quality and log templates."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from activities.config import Settings, load_settings
from activities.logs import MAX_TEMPLATES, LogAnalysis, LogFormat, LogFormatError, analyze, decode
from api.cli.evaluation import EvalReport, ScenarioError, evaluate, load_scenarios

app = typer.Typer()
logs_app = typer.Typer(help="Summarise logs into Drain3 templates.", no_args_is_help=True)
app.add_typer(logs_app, name="logs")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _llm_settings() -> Settings:
    # The openai client takes seconds to import; only --llm needs it, so every other command skips it.
    from activities.llm import NOT_CONFIGURED

    settings = load_settings()
    if not settings.llm_configured:
        raise _fail(NOT_CONFIGURED)
    return settings


def _print_report(report: EvalReport) -> None:
    llm = report.tokens is not None
    table = Table("scenario", "expected", "got", "confidence", "ok", *(("tokens", "model ms") if llm else ()))
    for case in report.cases:
        ok = "yes" if case.ok else "NO"
        measured = (str(case.tokens), f"{case.latency_ms:.0f}") if llm else ()
        fallback = " (heuristic kept)" if case.fallback else ""
        table.add_row(case.name, case.expected, case.got + fallback, f"{case.confidence:.2f}", ok, *measured)
    console = Console()
    console.print(table)
    if report.tokens is not None and report.latency_ms is not None:
        tokens, latency = report.tokens, report.latency_ms
        console.print(
            f"tokens {tokens.total} ({tokens.prompt} prompt, {tokens.completion} completion; "
            f"{tokens.per_case:.0f} per case); model latency per case mean {latency.mean:.0f} ms, "
            f"p95 {latency.p95:.0f} ms"
        )
    console.print(f"accuracy {report.accuracy:.1%} ({report.correct}/{report.total})")


@app.command("eval")
def eval_scenarios(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of scenario YAML files"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    llm: bool = typer.Option(
        False, "--llm", help="Diagnose with the configured LLM (REMEDIATOR_LLM_*), tool outputs replayed"
    ),
) -> None:
    """Run the heuristic (or, with --llm, the LLM) diagnoser over recorded scenarios and report accuracy."""
    settings = _llm_settings() if llm else None
    try:
        scenarios = load_scenarios(directory)
    except ScenarioError as err:
        raise _fail(str(err)) from err
    if settings is None:
        report = evaluate(scenarios)
    else:
        from api.cli.evaluation_llm import evaluate_llm

        report = asyncio.run(evaluate_llm(scenarios, settings))
    if as_json:
        typer.echo(report.model_dump_json(indent=2, exclude_none=True))
    else:
        _print_report(report)


def _read(path: Path) -> str:
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return decode(data)
    except LogFormatError as err:
        raise _fail(f"{path}: line {err.line}: {err.reason}") from err
    except (OSError, EOFError) as err:
        raise _fail(f"{path}: cannot read: {err}") from err


def _print_table(result: LogAnalysis) -> None:
    summary = result.summary
    table = Table("count", "level", "new", "first", "last", "template")
    for t in summary.templates:
        first = f"{t.first_seen:%H:%M:%S}" if t.first_seen else f"L{t.first_line}"
        last = f"{t.last_seen:%H:%M:%S}" if t.last_seen else f"L{t.last_line}"
        table.add_row(str(t.count), t.level or "-", "NEW" if t.new else "", first, last, escape(t.template))
    console = Console()
    console.print(table)
    omitted = f", {summary.omitted_templates} templates omitted" if summary.omitted_templates else ""
    console.print(
        f"{summary.total_lines} lines -> {len(summary.templates)} templates{omitted}; "
        f"{len(result.anomalies)} anomalous; tokens (len/4 estimate) {result.raw_tokens} -> "
        f"{result.summary_tokens} ({result.reduction:.0f}x smaller)"
    )


@logs_app.command("analyze")
def analyze_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Log file (.gz is decompressed)"),
    fmt: LogFormat = typer.Option("auto", "--format", help="text, jsonl, csv or auto"),
    baseline: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Logs of the last healthy window; their templates are not new"
    ),
    max_templates: int = typer.Option(MAX_TEMPLATES, min=1, max=1000, help="Cap on templates returned"),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON"),
) -> None:
    """Summarise a log file into templates with counts, first/last seen and anomalies."""
    text = _read(file)
    baseline_text = _read(baseline) if baseline else ""
    try:
        result = analyze(str(file), text, fmt, baseline_text, str(baseline), max_templates)
    except LogFormatError as err:
        raise _fail(str(err)) from err
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_table(result)
