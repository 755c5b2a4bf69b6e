"""The local OpenAI-compatible server and worker settings pointing at it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from activities.config import REPO_ROOT, Settings
from tests.llm.fake_openai import FakeOpenAI


@pytest.fixture(scope="session")
async def fake_llm() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


def llm_settings(fake: FakeOpenAI, tmp_path: Path, recording: str = "", **overrides: object) -> Settings:
    """Settings for one test: its own model name (so its own answer queue) and its own memory file."""
    model = f"{recording or 'none'}-{uuid.uuid4().hex[:8]}"
    if recording:
        fake.load(model, recording)
    values: dict[str, object] = {
        "llm_base_url": fake.base_url,
        "llm_api_key": "test-key",
        "llm_model": model,
        "memory_path": tmp_path / "memory.sqlite3",
        "runbook_dir": REPO_ROOT / "deploy" / "runbooks",
        "state_dir": tmp_path,
        "probe_allow": ["127.0.0.1"],  # the probe tool reaches the test's own local servers
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]
