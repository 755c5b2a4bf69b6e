"""`remediator auth key create|list|revoke`: API keys in the local key file.

They work on the file directly (REMEDIATOR_API_KEYS_FILE, default <state_dir>/api-keys.json), so
the first admin key can be made before any API runs; a running API sees every change on its next
request. Admins elsewhere use GET/POST/DELETE /auth/keys instead.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from activities.config import load_settings
from api.auth.keys import KeyStore, KeyStoreError
from api.auth.principal import GRANTS, Role
from api.cli.incidents import fail, out, when
from workflows.actions import Risk

app = typer.Typer()
auth_app = typer.Typer(help="Access control: API keys.", no_args_is_help=True)
key_app = typer.Typer(help="API keys in the local key file (REMEDIATOR_API_KEYS_FILE).", no_args_is_help=True)
app.add_typer(auth_app, name="auth")
auth_app.add_typer(key_app, name="key")

ROLES_HELP = "; ".join(f"{role}: {', '.join(sorted(GRANTS[role]))}" for role in Role)


def store() -> KeyStore:
    return KeyStore(load_settings().api_keys_path)


@key_app.command()
def create(
    name: Annotated[str, typer.Option(help="The principal's name; recorded as sender or approver.")],
    role: Annotated[list[Role], typer.Option(help=f"Repeatable. {ROLES_HELP}.")],
    environment: Annotated[
        list[str] | None,
        typer.Option(help="Repeatable: environments it speaks for or decides in; * for any."),
    ] = None,
    service: Annotated[
        list[str] | None,
        typer.Option(help="Repeatable: service globs it may speak for or decide on [default: *]."),
    ] = None,
    risk: Annotated[
        list[str] | None,
        typer.Option(help="Repeatable: read, change, destructive; the risks it may approve [default: all]."),
    ] = None,
) -> None:
    """Create a key and print it once: only its SHA-256 hash is kept."""
    risks = _risks(risk or [])
    keys = store()
    try:
        record, key = keys.create(name, role, environment, service, risks)
    except KeyStoreError as err:
        fail(str(err))
    typer.echo(key)
    typer.echo(
        f"created key {record.id} for {record.name!r} ({', '.join(record.roles)}) in {keys.path}; "
        "it is shown only this once:\n  export REMEDIATOR_API_KEY=<the key above>",
        err=True,
    )


def _risks(values: list[str]) -> list[Risk]:
    allowed: tuple[Risk, ...] = ("read", "change", "destructive")
    risks: list[Risk] = []
    for value in values:
        match = next((r for r in allowed if r == value), None)
        if match is None:
            fail(f"--risk {value!r}: choose from {', '.join(allowed)}")
        risks.append(match)
    return risks


@key_app.command("list")
def list_keys() -> None:
    """List keys (never their secrets): id, name, roles, limits, created, revoked."""
    keys = store()
    try:
        records = keys.records()
    except KeyStoreError as err:
        fail(str(err))
    if not records:
        out.print(f"no keys in {keys.path}")
        return
    table = Table("id", "name", "roles", "environments", "services", "risks", "created", "revoked")
    for r in records:
        table.add_row(
            r.id,
            r.name,
            ",".join(r.roles),
            ",".join(r.environments) or "(default)",
            ",".join(r.services),
            ",".join(r.risks) or "(all)",
            when(r.created_at),
            when(r.revoked_at) if r.revoked else "",
        )
    out.print(table)


@key_app.command()
def revoke(name_or_id: Annotated[str, typer.Argument(help="The key's id or name.")]) -> None:
    """Revoke a key; a running API refuses it from its next request on."""
    try:
        revoked = store().revoke(name_or_id)
    except KeyStoreError as err:
        fail(str(err))
    for record in revoked:
        out.print(f"revoked key {record.id} of {record.name!r}")
