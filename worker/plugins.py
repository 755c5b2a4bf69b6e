"""Your own Python workflows, registered on the worker without editing Remediator.

A workflow module is named by REMEDIATOR_WORKFLOW_MODULES (comma separated) or by an entry point of
an installed package in the group `remediator.workflows`:

    # pyproject.toml of your package
    [project.entry-points."remediator.workflows"]
    disk_janitor = "disk_janitor.workflow"

The module exposes

    WORKFLOWS = [DiskJanitorWorkflow]            # classes decorated with @workflow.defn (required)
    ACTIVITIES = [my_activity]                   # optional: functions decorated with @activity.defn
    def activities(settings: Settings) -> list:  # optional: activities built from Remediator's settings

Its workflows call Remediator's activities by name (`probe.http`, `ansible.apply` ...), exactly as the
IncidentWorkflow does. Loading happens when the worker starts and fails as a whole, naming the module,
when an import fails, an attribute has the wrong shape or a name is already taken, so a broken plugin
stops the worker at start instead of failing workflow tasks later.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from temporalio import activity, workflow

from activities.config import Settings

ENTRY_POINT_GROUP = "remediator.workflows"


class PluginError(RuntimeError):
    """A workflow module that cannot be registered; the message names it and says why."""


@dataclass(frozen=True)
class Plugin:
    module: str
    source: str  # where it was named: the setting, or the entry point and its package
    workflows: list[type] = field(default_factory=list)
    activities: list[Callable[..., Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"workflow module {self.module!r} ({self.source})"


def named_modules(settings: Settings) -> list[tuple[str, str]]:
    """(module, source) for every module the setting or an installed entry point names, once each."""
    named = [(module, "REMEDIATOR_WORKFLOW_MODULES") for module in settings.workflow_modules]
    for point in entry_points(group=ENTRY_POINT_GROUP):
        package = f" of {point.dist.name}" if point.dist else ""
        named.append((point.value, f"entry point {point.name!r}{package}"))
    unique: dict[str, str] = {}
    for module, source in named:
        unique.setdefault(module, source)  # named twice (setting and entry point): loaded once
    return list(unique.items())


def _import(module: str, source: str) -> ModuleType:
    where = f"workflow module {module!r} ({source})"
    if ":" in module:
        raise PluginError(f"{where}: name a module (`package.module`), not an object in one")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise PluginError(
            f"{where} cannot be imported: {err}; is it installed in the worker's environment or on "
            "its PYTHONPATH?"
        ) from err
    except Exception as err:
        raise PluginError(f"{where} failed while importing: {type(err).__name__}: {err}") from err


def _listed(mod: ModuleType, attr: str, where: str) -> list[Any]:
    value = getattr(mod, attr, [])
    if not isinstance(value, list | tuple):
        raise PluginError(f"{where}: {attr} must be a list, not {type(value).__name__}")
    return list(value)


def _activities(mod: ModuleType, where: str, settings: Settings) -> list[Callable[..., Any]]:
    found = _listed(mod, "ACTIVITIES", where)
    factory = getattr(mod, "activities", None)
    if factory is not None:
        if not callable(factory):
            raise PluginError(f"{where}: activities must be a function taking the settings")
        try:
            built = factory(settings)
        except Exception as err:
            raise PluginError(f"{where}: activities(settings) failed: {type(err).__name__}: {err}") from err
        if not isinstance(built, list | tuple):
            raise PluginError(f"{where}: activities(settings) must return a list")
        found += built
    for fn in found:
        if activity._Definition.from_callable(fn) is None:
            raise PluginError(f"{where}: {fn!r} in its activities is not decorated with @activity.defn")
    return found


def load_module(module: str, source: str, settings: Settings) -> Plugin:
    mod = _import(module, source)
    where = f"workflow module {module!r} ({source})"
    workflows = _listed(mod, "WORKFLOWS", where)
    if not workflows:
        raise PluginError(f"{where} has no WORKFLOWS: list its @workflow.defn classes in WORKFLOWS")
    for cls in workflows:
        if not isinstance(cls, type) or workflow._Definition.from_class(cls) is None:
            raise PluginError(f"{where}: {cls!r} in WORKFLOWS is not a class decorated with @workflow.defn")
    return Plugin(module, source, workflows, _activities(mod, where, settings))


def load_plugins(settings: Settings) -> list[Plugin]:
    return [load_module(module, source, settings) for module, source in named_modules(settings)]


def _claim(names: dict[str, str], name: str, owner: str, kind: str) -> None:
    if name in names:
        raise PluginError(f"{owner} registers the {kind} {name!r}, which {names[name]} already registers")
    names[name] = owner


def _workflow_name(cls: type) -> str:
    # None is the dynamic workflow, of which a worker takes one.
    return workflow._Definition.must_from_class(cls).name or "(dynamic workflow)"


def _activity_name(fn: Callable[..., Any]) -> str:
    return activity._Definition.must_from_callable(fn).name or "(dynamic activity)"


def with_plugins(
    workflows: Sequence[type], activities: Iterable[Callable[..., Any]], plugins: Sequence[Plugin]
) -> tuple[list[type], list[Callable[..., Any]]]:
    """Remediator's registrations plus the plugins'; a name taken twice is an error naming both owners."""
    workflow_names: dict[str, str] = {}
    activity_names: dict[str, str] = {}
    all_workflows, all_activities = list(workflows), list(activities)
    for cls in all_workflows:
        workflow_names[_workflow_name(cls)] = "Remediator"
    for fn in all_activities:
        activity_names[_activity_name(fn)] = "Remediator"
    for plugin in plugins:
        for cls in plugin.workflows:
            _claim(workflow_names, _workflow_name(cls), plugin.label, "workflow")
        for fn in plugin.activities:
            _claim(activity_names, _activity_name(fn), plugin.label, "activity")
        all_workflows += plugin.workflows
        all_activities += plugin.activities
    return all_workflows, all_activities
