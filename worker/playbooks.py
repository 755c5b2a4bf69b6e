"""Loading `playbooks/*.yaml`: parsed, validated, hashed, and chosen per alert.

Every problem is reported as `file:line: field: message`, from pydantic (shapes) and from the static
rules in workflows/validation.py (actions, templates, step ids). Loading fails as a whole, listing
every bad file, so a broken playbook is found when the worker or API starts, not mid-incident.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worker.yaml_source import Problem, SourceError, YamlDocument, load_yaml
from workflows.alerts import Alert
from workflows.matching import Selection, may_overlap, select
from workflows.playbook import ActionStep, CheckStep, PinnedPlaybook, Playbook, RollbackStep, VerifyStep
from workflows.templating import Loc, has_template
from workflows.validation import problems


class CatalogueError(Exception):
    def __init__(self, errors: list[SourceError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True)
class LoadedPlaybook:
    path: Path
    sha256: str
    playbook: Playbook

    @property
    def name(self) -> str:
        return self.playbook.name

    def pinned(self) -> PinnedPlaybook:
        return PinnedPlaybook(
            name=self.name, sha256=self.sha256, source=str(self.path), playbook=self.playbook
        )


def _ansible_specs(playbook: Playbook) -> Iterator[tuple[Loc, dict[str, Any]]]:
    for loc, step in playbook.walk():
        if isinstance(step, ActionStep | RollbackStep):
            yield (*loc, "action"), step.action
        elif isinstance(step, CheckStep | VerifyStep) and isinstance(step.check.get("action"), dict):
            yield (*loc, "check", "action"), step.check["action"]


def _missing_ansible_files(playbook: Playbook, ansible_dir: Path) -> Iterator[tuple[Loc, str]]:
    """Ansible playbooks named literally must exist, so a typo fails at load and not at 3 a.m."""
    root = ansible_dir.resolve()
    for loc, spec in _ansible_specs(playbook):
        if spec.get("executor") != "ansible":
            continue
        for key in ("playbook", "rollback_playbook"):
            name = spec.get(key)
            if not isinstance(name, str) or not name or has_template(name):
                continue
            target = (root / name).resolve()
            if not target.is_relative_to(root) or not target.is_file():
                yield (*loc, key), f"Ansible playbook {name!r} not found in {ansible_dir}"


def parse_playbook(doc: YamlDocument, ansible_dir: Path | None = None) -> LoadedPlaybook:
    try:
        playbook = Playbook.model_validate(doc.data)
    except ValidationError as err:
        raise doc.error(doc.problems(err)) from None
    found = [doc.problem(issue.loc, issue.message) for issue in problems(playbook)]
    if ansible_dir is not None:
        found += [doc.problem(loc, message) for loc, message in _missing_ansible_files(playbook, ansible_dir)]
    if found:
        raise doc.error(found)
    return LoadedPlaybook(path=doc.path, sha256=doc.sha256, playbook=playbook)


def load_playbook(path: Path, ansible_dir: Path | None = None) -> LoadedPlaybook:
    return parse_playbook(load_yaml(path), ansible_dir)


def playbook_files(directory: Path) -> list[Path]:
    """The playbooks in a directory: its own *.yaml and *.yml files (not the ansible/ subfolder)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


@dataclass
class Catalogue:
    playbooks: list[LoadedPlaybook]
    warnings: list[str] = field(default_factory=list)

    def get(self, name: str) -> LoadedPlaybook | None:
        return next((p for p in self.playbooks if p.name == name), None)

    def select(self, alert: Alert) -> tuple[LoadedPlaybook | None, Selection]:
        """The playbook for an alert (highest priority, then most specific, then by name)."""
        selection = select([(p.name, p.playbook.match) for p in self.playbooks], alert.labels)
        return (self.get(selection.chosen) if selection.chosen else None), selection


def _ties(playbooks: list[LoadedPlaybook]) -> Iterator[str]:
    for index, a in enumerate(playbooks):
        for b in playbooks[index + 1 :]:
            ma, mb = a.playbook.match, b.playbook.match
            if (ma.priority, ma.specificity) == (mb.priority, mb.specificity) and may_overlap(ma, mb):
                yield (
                    f"{a.path.name} ({a.name}) and {b.path.name} ({b.name}) may match the same alert with "
                    f"equal priority {ma.priority}; {min(a.name, b.name)} wins by name. Set priorities to choose."
                )


def _check_catalogue(loaded: list[LoadedPlaybook], errors: list[SourceError]) -> Catalogue:
    """Cross-file rules: one name per playbook; warnings for overlaps only a name breaks."""
    seen: dict[str, LoadedPlaybook] = {}
    kept: list[LoadedPlaybook] = []
    for item in loaded:
        if (first := seen.get(item.name)) is not None:
            doc = load_yaml(item.path)
            errors.append(
                doc.error([doc.problem(("name",), f"{item.name!r} is already defined in {first.path}")])
            )
            continue
        seen[item.name] = item
        kept.append(item)
    if errors:
        raise CatalogueError(errors)
    return Catalogue(playbooks=kept, warnings=list(_ties(kept)))


def load_files(paths: list[Path], ansible_dir: Path | None = None) -> Catalogue:
    loaded: list[LoadedPlaybook] = []
    errors: list[SourceError] = []
    for path in paths:
        try:
            loaded.append(load_playbook(path, ansible_dir))
        except SourceError as err:
            errors.append(err)
    return _check_catalogue(loaded, errors)


def load_catalogue(directory: Path, ansible_dir: Path | None = None) -> Catalogue:
    if not directory.is_dir():
        raise CatalogueError([SourceError(directory, [Problem(1, "(directory)", "not a directory")])])
    return load_files(playbook_files(directory), ansible_dir)
