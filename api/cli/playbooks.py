"""`remediator playbook list|show|validate|test`: playbooks as reviewable, testable data.

Errors name the file, the line and the field, one per line on stderr, and exit non-zero; never a
traceback.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from activities.config import load_settings
from worker.dry_run import load_sample, run_dry
from worker.playbooks import (
    Catalogue,
    CatalogueError,
    LoadedPlaybook,
    load_catalogue,
    load_files,
    load_playbook,
)
from worker.policy_file import LoadedPolicy, load_policy, policy_from_settings
from worker.yaml_source import SourceError
from workflows.playbook import ApprovalStep, DecideStep, Playbook, Step

app = typer.Typer()
playbook_app = typer.Typer(help="List, show, validate and dry-run playbooks.", no_args_is_help=True)
app.add_typer(playbook_app, name="playbook")

out = Console(highlight=False, markup=False, soft_wrap=True)

Directory = Annotated[
    Path | None,
    typer.Option("--dir", help="Playbook directory [default: REMEDIATOR_PLAYBOOK_DIR or playbooks/]"),
]
PolicyFile = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file [default: REMEDIATOR_POLICY_FILE or built-in defaults]"),
]


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _catalogue(directory: Path | None) -> Catalogue:
    settings = load_settings()
    try:
        return load_catalogue(directory or settings.playbook_dir, settings.ansible_playbook_dir)
    except CatalogueError as err:
        _fail(str(err))


def _policy(path: Path | None) -> LoadedPolicy:
    try:
        return load_policy(path) if path else policy_from_settings(load_settings())
    except SourceError as err:
        _fail(str(err))


@playbook_app.command("list")
def list_playbooks(directory: Directory = None) -> None:
    """The loaded playbooks, highest priority first."""
    catalogue = _catalogue(directory)
    for item in sorted(catalogue.playbooks, key=lambda p: (-p.playbook.match.priority, p.name)):
        match = item.playbook.match
        steps = sum(1 for _ in item.playbook.walk())
        out.print(
            f"{item.name:<32} priority {match.priority:<4} {steps:>2} steps  {item.path.name}  {item.sha256[:12]}"
        )
        out.print(f"{'':<32} {', '.join(map(str, match.matchers))}")
    for warning in catalogue.warnings:
        out.print(f"warning: {warning}")


def _outline(steps: list[Step], depth: int = 1) -> list[str]:
    lines: list[str] = []
    pad = "  " * depth
    for step in steps:
        about = f" - {step.description}" if step.description else ""
        lines.append(f"{pad}{step.id} ({step.kind}){about}")
        if isinstance(step, DecideStep):
            for branch, inner in (("then", step.then), ("else", step.else_)):
                if inner:
                    lines.append(f"{pad}  {branch}:")
                    lines.extend(_outline(inner, depth + 2))
    return lines


def _describe(item: LoadedPlaybook) -> list[str]:
    playbook: Playbook = item.playbook
    lines = [
        f"{playbook.name}: {playbook.description}".rstrip(": "),
        f"file:     {item.path}",
        f"sha256:   {item.sha256}",
        f"match:    {', '.join(map(str, playbook.match.matchers))} (priority {playbook.match.priority})",
    ]
    for name, spec in playbook.params.items():
        source = f"label {spec.label or name}" if spec.override else "fixed"
        lines.append(f"param:    {name} = {spec.default!r} ({source})")
    return [*lines, "steps:", *_outline(playbook.steps)]


@playbook_app.command()
def show(
    name: Annotated[str, typer.Argument(help="Playbook name (or file)")],
    directory: Directory = None,
    source: Annotated[bool, typer.Option("--source", help="Print the YAML as written")] = False,
) -> None:
    """One playbook: where it comes from, what it matches, its params and its steps."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        item = _load(path)
    else:
        found = _catalogue(directory).get(name)
        if found is None:
            _fail(f"error: no playbook named {name!r}")
        item = found
    for line in _describe(item):
        out.print(line)
    if source:
        out.print("", item.path.read_text(encoding="utf-8"), sep="\n")


def _load(path: Path) -> LoadedPlaybook:
    try:
        return load_playbook(path, load_settings().ansible_playbook_dir)
    except SourceError as err:
        _fail(str(err))


def _unknown_groups(catalogue: Catalogue, policy: LoadedPolicy) -> list[str]:
    warnings: list[str] = []
    for item in catalogue.playbooks:
        for _, step in item.playbook.walk():
            if isinstance(step, ApprovalStep):
                warnings.extend(
                    f"{item.path}: step {step.id}: group {group!r} is not in the policy ({policy.source}); "
                    "it is read as a person's name"
                    for group in step.groups
                    if group not in policy.policy.groups
                )
    return warnings


@playbook_app.command()
def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Playbook files [default: every file in --dir]")
    ] = None,
    directory: Directory = None,
    policy: PolicyFile = None,
) -> None:
    """Validate playbooks (and the policy): errors as file:line: field: message, exit 1."""
    settings = load_settings()
    try:
        if files:
            catalogue = load_files(files, settings.ansible_playbook_dir)
        else:
            catalogue = load_catalogue(directory or settings.playbook_dir, settings.ansible_playbook_dir)
    except CatalogueError as err:
        _fail(str(err))
    loaded_policy = _policy(policy)
    for warning in [*catalogue.warnings, *_unknown_groups(catalogue, loaded_policy)]:
        out.print(f"warning: {warning}")
    out.print(f"ok: {len(catalogue.playbooks)} playbook(s) valid; policy from {loaded_policy.source} valid")


@playbook_app.command()
def test(
    file: Annotated[Path, typer.Argument(help="The playbook file")],
    alert: Annotated[
        Path, typer.Option("--alert", help="Sample alert (JSON), optionally with canned outputs")
    ],
    policy: PolicyFile = None,
) -> None:
    """Dry-run a playbook against a sample alert on the time-skipping server; print its path."""
    item = _load(file)
    try:
        sample = load_sample(alert)
    except SourceError as err:
        _fail(str(err))
    loaded_policy = _policy(policy)
    if not item.playbook.match.matches(sample.alert.labels):
        out.print(f"warning: the sample alert does not match {item.name}'s matchers; running it anyway")
    try:
        report = asyncio.run(run_dry(item.pinned(), loaded_policy.policy, sample))
    except (FileNotFoundError, RuntimeError) as err:
        _fail(f"error: {err}")
    out.print(f"{item.name} (sha256 {item.sha256[:12]}) against {alert}, policy from {loaded_policy.source}:")
    for event in report.events:
        out.print(f"  {event.event}" + (f": {event.detail}" if event.detail else ""))
    result = report.result
    out.print(f"path: {' -> '.join(f'{r.step}[{r.status}]' for r in result.path)}")
    out.print(f"outcome: {result.outcome} (dry-run): {result.reason}")
    taken = [r.step for r in result.path]
    if sample.expect and taken != sample.expect:
        _fail(f"error: {alert}: expected the path {' -> '.join(sample.expect)}, got {' -> '.join(taken)}")
    if result.outcome == "failed":
        raise typer.Exit(1)
