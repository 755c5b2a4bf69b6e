"""The `remediator` command. Each group of commands lives in its own module of api/cli/ and is merged here."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from activities.config import SettingsError
from api.cli import alerts, auth, codec, diagnosis, incidents, memory, operations, playbooks, stack


class _Commands(TyperGroup):
    def invoke(self, ctx: Any) -> Any:  # click.Context, which typer vendors privately
        # Whichever command first reads the REMEDIATOR_* environment, a bad value is one line, exit 2.
        try:
            return super().invoke(ctx)
        except SettingsError as err:
            typer.echo(f"remediator: invalid settings: {err}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="remediator",
    help="Alerts in, durable and auditable remediation out, on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_Commands,
)
for group in (
    stack.app,
    incidents.app,
    alerts.app,
    diagnosis.app,
    memory.app,
    playbooks.app,
    operations.app,
    auth.app,
    codec.app,
):
    app.add_typer(group)


def main() -> None:
    app()
