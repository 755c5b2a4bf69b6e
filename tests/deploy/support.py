"""Shared by the deploy tests: where things are, and the REMEDIATOR_* names Settings knows."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from activities.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"


def unknown_settings(names: Iterable[str]) -> set[str]:
    """The REMEDIATOR_* names among `names` that no field of Settings reads (a typo is silently ignored)."""
    known = {f"REMEDIATOR_{field.upper()}" for field in Settings.model_fields}
    return {n for n in names if n.startswith("REMEDIATOR_")} - known


def image_pinned(image: str) -> bool:
    """`name:tag` with a tag other than latest (a registry port's colon is not a tag)."""
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")
