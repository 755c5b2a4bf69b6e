"""The `remediator` command. Each group of commands lives in its own module and is merged here."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from activities.config import SettingsError
from api import (
    cli_alerts,
    cli_auth,
    cli_codec,
    cli_diagnosis,
    cli_incidents,
    cli_memory,
    cli_operations,
    cli_playbooks,
    cli_stack,
)


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
    cli_stack.app,
    cli_incidents.app,
    cli_alerts.app,
    cli_diagnosis.app,
    cli_memory.app,
    cli_playbooks.app,
    cli_operations.app,
    cli_auth.app,
    cli_codec.app,
):
    app.add_typer(group)


def main() -> None:
    app()
