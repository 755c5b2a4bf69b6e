"""Placeholder until filled."""

import typer

app = typer.Typer()
