"""Loading user workflow modules: by setting, by entry point, and clear errors naming a broken one."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from activities.config import REPO_ROOT, Settings
from worker.devserver import DevServer
from worker.main import WORKFLOWS, build_activities
from worker.plugins import PluginError, load_plugins, named_modules, with_plugins

EXAMPLES = REPO_ROOT / "deploy" / "examples"


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> str:
    """A module of its own name (imports are cached per name), importable from tmp_path."""
    name = f"plugin_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_the_setting_names_comma_separated_modules(examples: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_WORKFLOW_MODULES", " disk_janitor.workflow , ")
    settings = Settings()
    assert settings.workflow_modules == ["disk_janitor.workflow"]
    [plugin] = load_plugins(settings)
    assert (plugin.module, plugin.source) == ("disk_janitor.workflow", "REMEDIATOR_WORKFLOW_MODULES")
    assert [cls.__name__ for cls in plugin.workflows] == ["DiskJanitor"]

    workflows, activities = with_plugins(WORKFLOWS, build_activities(settings), [plugin])
    assert workflows == [*WORKFLOWS, *plugin.workflows]
    names = [getattr(fn, "__temporal_activity_definition").name for fn in activities]
    assert "disk_janitor.free_percent" in names and "ansible.apply" in names


def test_an_entry_point_names_a_module(
    examples: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "disk_janitor_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: disk-janitor-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[remediator.workflows]\njanitor = disk_janitor.workflow\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert named_modules(Settings()) == [
        ("disk_janitor.workflow", "entry point 'janitor' of disk-janitor-plugin")
    ]
    [plugin] = load_plugins(Settings())
    assert [cls.__name__ for cls in plugin.workflows] == ["DiskJanitor"]
    # Named by both the setting and an entry point: loaded once, as the setting named it.
    both = Settings(workflow_modules=["disk_janitor.workflow"])
    assert named_modules(both) == [("disk_janitor.workflow", "REMEDIATOR_WORKFLOW_MODULES")]


GOOD_WORKFLOW = """
from temporalio import activity, workflow

@workflow.defn(name="{name}")
class Mine:
    @workflow.run
    async def run(self) -> None: ...
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = 1 / 0\n", "failed while importing: ZeroDivisionError: division by zero"),
        ("import no_such_dependency_xyz\n", "cannot be imported: No module named 'no_such_dependency_xyz'"),
        ("WORKFLOWS = []\n", "has no WORKFLOWS"),
        ("WORKFLOWS = 'Mine'\n", "WORKFLOWS must be a list, not str"),
        ("class Mine: ...\nWORKFLOWS = [Mine]\n", "is not a class decorated with @workflow.defn"),
        (
            GOOD_WORKFLOW.format(name="Mine") + "def helper(): ...\nWORKFLOWS = [Mine]\nACTIVITIES = [helper]\n",
            "in its activities is not decorated with @activity.defn",
        ),
        (
            GOOD_WORKFLOW.format(name="IncidentWorkflow") + "WORKFLOWS = [Mine]\n",
            "registers the workflow 'IncidentWorkflow', which Remediator already registers",
        ),
        (
            GOOD_WORKFLOW.format(name="Mine")
            + "@activity.defn(name='probe.http')\nasync def probe() -> None: ...\n"
            + "WORKFLOWS = [Mine]\nACTIVITIES = [probe]\n",
            "registers the activity 'probe.http', which Remediator already registers",
        ),
        (
            GOOD_WORKFLOW.format(name="Mine") + "WORKFLOWS = [Mine]\ndef activities(settings): raise KeyError('token')\n",
            "activities(settings) failed: KeyError: 'token'",
        ),
    ],
    ids=["raises", "missing-dependency", "empty", "not-a-list", "not-a-workflow", "plain-function",
         "workflow-clash", "activity-clash", "factory-fails"],
)  # fmt: skip
def test_a_broken_module_is_named_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    name = module(tmp_path, monkeypatch, text)
    settings = Settings(workflow_modules=[name])
    with pytest.raises(PluginError) as raised:
        with_plugins(WORKFLOWS, build_activities(settings), load_plugins(settings))
    assert str(raised.value).startswith(f"workflow module {name!r} (REMEDIATOR_WORKFLOW_MODULES)")
    assert message in str(raised.value)


def test_a_missing_module_and_an_object_path_are_refused() -> None:
    with pytest.raises(PluginError, match="cannot be imported: No module named 'nowhere'; is it installed"):
        load_plugins(Settings(workflow_modules=["nowhere.workflows"]))
    with pytest.raises(PluginError, match=r"name a module \(`package.module`\), not an object in one"):
        load_plugins(Settings(workflow_modules=["disk_janitor.workflow:DiskJanitor"]))


@pytest.mark.integration
def test_the_worker_stops_at_start_with_one_line_naming_the_module(
    dev_server: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = module(tmp_path, monkeypatch, "raise RuntimeError('missing config')\n")
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_server.address,
        "REMEDIATOR_WORKFLOW_MODULES": name,
        "REMEDIATOR_STATE_DIR": str(tmp_path / "state"),
        "PYTHONPATH": str(tmp_path),
    }
    remediator = Path(sys.executable).parent / "remediator"
    done = subprocess.run(
        [str(remediator), "worker"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == (
        f"remediator: worker stopped: workflow module {name!r} (REMEDIATOR_WORKFLOW_MODULES) failed while "
        "importing: RuntimeError: missing config\n"
    )
