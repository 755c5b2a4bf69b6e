"""The worker's probes reach only allow-listed hosts; a refusal is a result naming why."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.config import Settings
from activities.evidence import EvidenceActivities
from activities.probe import ProbeActivities
from workflows.alerts import Alert
from workflows.investigation_models import ProbeRequest
from workflows.plans import VerifyRequest

REDIRECTS = {
    "/to-metadata": "http://169.254.169.254/latest/meta-data/",
    "/to-unlisted": "http://unlisted.internal/health",
    "/to-ok": "/ok",
}


SEEN_HOSTS: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN_HOSTS.append(self.headers["Host"])
        if target := REDIRECTS.get(self.path):
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
            return
        body = json.dumps({"host": self.headers["Host"], "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def probe(url: str, allow: str, tmp_path: Path) -> tuple[bool, int | None, str]:
    result = await ProbeActivities(Settings(state_dir=tmp_path, probe_allow=allow)).probe(
        ProbeRequest(url=url)
    )
    return result.ok, result.status, result.error


async def test_an_allowed_local_server_answers(port: int, tmp_path: Path) -> None:
    assert await probe(f"http://127.0.0.1:{port}/ok", "127.0.0.1", tmp_path) == (True, 200, "")
    # a redirect inside the allowed host is followed
    assert await probe(f"http://127.0.0.1:{port}/to-ok", "127.0.0.1", tmp_path) == (True, 200, "")


async def test_by_name_the_checked_address_is_dialled_and_the_name_kept_in_host(
    port: int, tmp_path: Path
) -> None:
    assert await probe(f"http://localhost:{port}/ok", "localhost,127.0.0.1,::1", tmp_path) == (True, 200, "")
    assert SEEN_HOSTS[-1] == f"localhost:{port}"  # the server saw the name, not the address dialled


@pytest.mark.parametrize(
    ("url", "allow", "why"),
    [
        ("http://127.0.0.1:{port}/ok", "", "127.0.0.1 is loopback"),
        ("http://127.0.0.1:{port}/ok", "0.0.0.0/0", "127.0.0.1 is loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/ok", "10.0.0.0/8", "is loopback"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.0.0/16",
            "169.254.169.254 is a cloud metadata address",
        ),
        ("http://[fd00:ec2::254]/", "fd00::/8", "is a cloud metadata address"),
        ("http://169.254.10.1/", "10.0.0.0/8", "169.254.10.1 is link-local"),
        ("http://[fe80::1]/", "", "fe80::1 is link-local"),
        ("http://0.0.0.0:{port}/ok", "", "0.0.0.0 is unspecified"),
        ("http://unlisted.internal/health", "web.internal", "unlisted.internal is not listed"),
        ("http://10.1.2.3/health", "web.internal,192.168.0.0/16", "10.1.2.3 is not in a listed network"),
        ("http://localhost:{port}/ok", "localhost", "localhost resolves to "),
        ("http://127.0.0.1:{port}/to-metadata", "127.0.0.1", "169.254.169.254 is a cloud metadata address"),
        ("http://127.0.0.1:{port}/to-unlisted", "127.0.0.1", "unlisted.internal is not listed"),
        ("file:///etc/passwd", "127.0.0.1", "file scheme"),
    ],
)
async def test_refusals_are_results(url: str, allow: str, why: str, port: int, tmp_path: Path) -> None:
    ok, status, error = await probe(url.format(port=port), allow, tmp_path)
    assert (ok, status) == (False, None)
    assert error.startswith("refused by allow-list: ") and why in error, error


async def test_a_refused_probe_url_is_recorded_in_evidence_and_verify_stops(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, probe_allow="")
    alert = Alert(
        fingerprint="f1", labels={"alertname": "Down"}, annotations={"probe_url": "http://169.254.169.254/"}
    )
    activities = EvidenceActivities(settings)
    evidence = await ActivityEnvironment().run(activities.gather_evidence, alert)
    assert evidence.probe is not None and evidence.probe.error.startswith(
        "refused by allow-list: 169.254.169.254"
    )
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            activities.verify, VerifyRequest(alert=alert, probe_url="http://169.254.169.254/")
        )
    assert caught.value.non_retryable and "refused by allow-list" in caught.value.message


def test_bad_allow_list_entries_are_named() -> None:
    with pytest.raises(ValueError, match="'http://x' is not a host name, an IP address or a CIDR network"):
        Settings(probe_allow="127.0.0.1,http://x")
