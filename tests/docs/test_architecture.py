"""README "Architecture" names every module of the four packages, and every file it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SECTION = README[
    README.index("## Architecture\n") : README.index("\n## ", README.index("## Architecture\n") + 1)
]
PACKAGES = ("workflows", "activities", "worker", "api")
MODULES = sorted(
    path.relative_to(ROOT)
    for package in PACKAGES
    for path in (ROOT / package).rglob("*.py")
    if path.name != "__init__.py"
)


@pytest.mark.parametrize("module", MODULES, ids=str)
def test_every_module_is_named(module: Path) -> None:
    assert f"`{module.name}`" in SECTION or str(module) in SECTION, (
        f"README Architecture does not name {module}"
    )


def test_every_file_named_exists() -> None:
    named = set(re.findall(r"[\w/]+\.(?:py|yml)\b", SECTION))
    everywhere = {p.name for package in PACKAGES for p in (ROOT / package).rglob("*") if p.is_file()}
    missing = sorted(n for n in named if not ((ROOT / n).exists() if "/" in n else n in everywhere))
    assert not missing, f"README Architecture names files that do not exist: {missing}"


def test_every_folder_named_exists() -> None:
    folders = set(
        re.findall(r"`((?:workflows|activities|worker|api|playbooks|deploy|tests)/[\w/]*)`", SECTION)
    )
    assert folders and all((ROOT / f).is_dir() for f in folders), folders
