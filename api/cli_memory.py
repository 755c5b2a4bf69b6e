"""`remediator memory`: search incident memory and runbooks as the model and the heuristic see them,
and copy a SQLite memory into the configured store when a team moves to a Qdrant server."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from activities.memory_documents import MemoryUnavailable
from activities.memory_sqlite import SqliteDocuments
from worker.settings import Settings, load_settings
from workflows.investigation_models import MemoryQuery, MemoryResult

app = typer.Typer()
memory_app = typer.Typer(help="Incident memory and runbooks.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
COPY_BATCH = 256


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _where(settings: Settings) -> str:
    if settings.memory_backend == "sqlite":
        return str(settings.memory_file)
    return f"Qdrant at {settings.qdrant_url or settings.state_dir / 'qdrant'}"


@memory_app.command()
def search(
    text: str = typer.Argument(..., help="What to look for, as an alert or a question would say it"),
    kind: Literal["incident", "runbook"] | None = typer.Option(None, help="Only incidents or only runbooks"),
    limit: int = typer.Option(5, min=1, max=20, help="How many hits"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
) -> None:
    """Hybrid retrieval (BM25, plus vectors with REMEDIATOR_EMBEDDING_MODEL) over the configured store."""
    from activities.memory import build_store  # openai and qdrant-client: seconds to import, so only here

    settings = load_settings()
    try:
        result = asyncio.run(build_store(settings).search(MemoryQuery(text=text, kind=kind, limit=limit)))
    except MemoryUnavailable as err:
        raise _fail(str(err)) from err
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_hits(result, _where(settings))


def _print_hits(result: MemoryResult, where: str) -> None:
    console = Console()
    table = Table("score", "kind", "title", "category", "outcome", "matched by")
    for hit in result.hits:
        row = (
            f"{hit.score:.4f}",
            hit.kind,
            escape(hit.title),
            hit.category,
            hit.outcome,
            "+".join(hit.matched_by),
        )
        table.add_row(*row)
    console.print(table)
    console.print(f"{len(result.hits)} hits from {where}" + (f"; {result.note}" if result.note else ""))


@memory_app.command()
def copy(
    source: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A memory.sqlite3 file to copy from"
    ),
) -> None:
    """Copy every document of a SQLite memory into the configured store (REMEDIATOR_MEMORY_BACKEND).

    Copying again overwrites the same documents; vectors are made again on the next search."""
    from activities.memory import build_store

    settings = load_settings()
    if settings.memory_backend == "sqlite" and source.resolve() == settings.memory_file.resolve():
        raise _fail(f"{source} is the configured memory itself; set REMEDIATOR_MEMORY_BACKEND=qdrant first")
    target = build_store(settings).documents

    async def run() -> Counter[str]:
        docs = await SqliteDocuments(source).documents(None)
        for start in range(0, len(docs), COPY_BATCH):
            await target.upsert(docs[start : start + COPY_BATCH])
        return Counter(d.kind for d in docs)

    try:
        kinds = asyncio.run(run())
    except MemoryUnavailable as err:
        raise _fail(str(err)) from err
    typer.echo(
        f"copied {kinds['incident']} incidents and {kinds['runbook']} runbook sections "
        f"from {source} to {_where(settings)}"
    )
