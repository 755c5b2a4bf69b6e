"""deploy/compose.yaml, checked by Compose itself (`docker-compose config`, Debian's package, which
`make test` installs) and then for what Remediator needs of it."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.config import Settings
from tests.deploy.support import DEPLOY, image_pinned, unknown_settings
from workflows import search_attributes as sa

COMPOSE = DEPLOY / "compose.yaml"
# The values compose.yaml insists on (`${VAR:?}`); the user exports them before `up`.
REQUIRED = {
    "REMEDIATOR_CODEC_KEYS": "test=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # kid=base64 of 32 bytes
    "REMEDIATOR_CODEC_ACTIVE_KEY": "test",
}


def compose_config(path: Path, env: dict[str, str] = REQUIRED) -> subprocess.CompletedProcess[str]:
    found = shutil.which("docker-compose")
    if not found:
        raise FileNotFoundError("docker-compose is missing: `make test` installs Debian's docker-compose")
    return subprocess.run(
        [found, "-f", str(path), "config"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config(COMPOSE)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_compose_rejects_what_is_invalid(tmp_path: Path) -> None:
    # The validator is real: a misspelt key, or a missing required secret value, fails.
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    healthcheck:", "    healthchek:"))
    result = compose_config(broken)
    assert result.returncode != 0 and "healthchek" in result.stderr
    missing = compose_config(COMPOSE, env={})
    assert missing.returncode != 0 and "REMEDIATOR_CODEC_KEYS" in missing.stderr


def test_the_services(config: dict[str, Any]) -> None:
    services = config["services"]
    assert {
        "postgresql",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "qdrant",
        "codec-server",
        "api",
    } <= set(services)
    workers = [name for name, s in services.items() if s.get("command") == ["worker"]]
    assert len(workers) == 2, workers
    for name, service in services.items():
        assert image_pinned(service["image"]), f"{name}: {service['image']} is not pinned"
    assert services["temporal"]["environment"]["DB"].startswith("postgres")
    assert services["temporal"]["image"].startswith("temporalio/")


def test_settings_are_real_and_shared_memory_is_qdrant(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        env = service.get("environment") or {}
        assert not unknown_settings(env) - set(REQUIRED), (name, unknown_settings(env))
    api = config["services"]["api"]["environment"]
    assert api["REMEDIATOR_MEMORY_BACKEND"] == "qdrant"
    assert api["REMEDIATOR_QDRANT_URL"] == "http://qdrant:6333"


def test_workers_share_the_terraform_work_dir_and_stop_gracefully(config: dict[str, Any]) -> None:
    workers = [s for s in config["services"].values() if s.get("command") == ["worker"]]
    mounts = []
    for worker in workers:
        env = worker["environment"]
        [volume] = [v for v in worker["volumes"] if v.split(":")[1] == env["REMEDIATOR_TERRAFORM_WORK_DIR"]]
        mounts.append(volume.split(":")[0])
        settings = Settings.model_validate(
            {k.removeprefix("REMEDIATOR_").lower(): v for k, v in env.items() if k.startswith("REMEDIATOR_")}
        )
        stop = timedelta(seconds=int(worker["stop_grace_period"].removesuffix("s")))
        assert stop > settings.worker_shutdown_grace + settings.terraform_stop_grace
    assert len(set(mounts)) == 1 and mounts[0] in config["volumes"], mounts


def test_the_ui_decodes_through_the_codec_server(config: dict[str, Any]) -> None:
    services = config["services"]
    endpoint = services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"]
    command = services["codec-server"]["command"]
    port = command[command.index("--port") + 1]
    assert endpoint == f"http://localhost:{port}"
    assert any(p.split(":")[-1].split("/")[0] == port for p in services["codec-server"]["ports"])


def test_search_attributes_are_created_as_keywords(config: dict[str, Any]) -> None:
    setup = config["services"]["temporal-setup"]
    script = " ".join(setup["command"])
    assert "search-attribute create" in script and "--type Keyword" in script
    for key in sa.ALL:
        assert key.name in script.split("for name in ")[1].split(";")[0], key.name
    for name, service in config["services"].items():
        if service.get("image", "").startswith("remediator") and name != "temporal-setup":
            assert service["depends_on"] == {} or service["depends_on"]["temporal-setup"] == {
                "condition": "service_completed_successfully"
            }, name
