"""The `remediator` command. Each group of commands lives in its own module and is merged here."""

from __future__ import annotations

import typer

from api import cli_diagnosis, cli_incidents, cli_operations, cli_playbooks, cli_stack

app = typer.Typer(
    name="remediator",
    help="Alerts in, durable and auditable remediation out, on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for group in (cli_stack.app, cli_incidents.app, cli_diagnosis.app, cli_playbooks.app, cli_operations.app):
    app.add_typer(group)


def main() -> None:
    app()
