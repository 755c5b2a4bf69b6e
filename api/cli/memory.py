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

from activities.config import load_settings
from activities.memory.documents import DocumentStore, MemoryUnavailable
from activities.memory.sqlite import SqliteDocuments
from api.cli.incidents import fail
from workflows.investigation_models import MemoryQuery, MemoryResult

app = typer.Typer()
memory_app = typer.Typer(help="Incident memory and runbooks.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
COPY_BATCH = 256


@memory_app.command()
def search(
    text: str = typer.Argument(..., help="What to look for, as an alert or a question would say it"),
    kind: Literal["incident", "runbook"] | None = typer.Option(None, help="Only incidents or only runbooks"),
    limit: int = typer.Option(5, min=1, max=20, help="How many hits"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
) -> None:
    """Hybrid retrieval (BM25, plus vectors with REMEDIATOR_EMBEDDING_MODEL) over the configured store."""
    from activities.memory.store import (
        build_store,  # openai and qdrant-client: seconds to import, so only here
    )

    settings = load_settings()
    try:  # opening can fail too: another process holding the local mode's folder
        store = build_store(settings)
        result = asyncio.run(store.search(MemoryQuery(text=text, kind=kind, limit=limit)))
    except MemoryUnavailable as err:
        fail(str(err))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_hits(result, store.documents.label)


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
    from activities.memory.store import build_documents

    settings = load_settings()
    if settings.memory_backend == "sqlite" and source.resolve() == settings.memory_file.resolve():
        fail(f"{source} is the configured memory itself; set REMEDIATOR_MEMORY_BACKEND=qdrant first")

    async def run(target: DocumentStore) -> Counter[str]:
        docs = await SqliteDocuments(source).documents(None)
        for start in range(0, len(docs), COPY_BATCH):
            await target.upsert(docs[start : start + COPY_BATCH])
        return Counter(d.kind for d in docs)

    try:
        target = build_documents(settings)
        kinds = asyncio.run(run(target))
    except MemoryUnavailable as err:
        fail(str(err))
    typer.echo(
        f"copied {kinds['incident']} incidents and {kinds['runbook']} runbook sections "
        f"from {source} to {target.label}"
    )
