"""Encryption at rest: history payloads are AES-GCM ciphertext without the key, readable with it and
through the codec server (for callers with read permission); keys rotate by id; tampering is caught."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client

from activities.config import Settings, parse_keys
from api.app import create_app
from api.codec_server import create_codec_app
from tests.api.support import serve
from tests.credentials import ApiKeys, ByRoute
from worker.codec import CodecError, EncryptionCodec, codec_for, with_dev_key
from worker.devserver import DevServer


def _key(kid: str) -> str:
    return f"{kid}={base64.b64encode(os.urandom(32)).decode()}"


K1, K2 = _key("k1"), _key("k2")


def _codec(keys: str, active: str) -> EncryptionCodec:
    return EncryptionCodec(parse_keys(keys), active)


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"summary": "disk full on db-1"}')


async def test_rotation_old_payloads_decode_after_a_new_active_key() -> None:
    [sealed_k1] = await _codec(K1, "k1").encode([PLAIN])
    assert sealed_k1.metadata["encoding"] == b"binary/encrypted" and b"disk full" not in sealed_k1.data
    assert sealed_k1.metadata["encryption-key-id"] == b"k1"
    rotated = _codec(f"{K1},{K2}", "k2")
    [sealed_k2] = await rotated.encode([PLAIN])
    assert sealed_k2.metadata["encryption-key-id"] == b"k2"
    assert await rotated.decode([sealed_k1, sealed_k2]) == [PLAIN, PLAIN]
    # two encryptions of one payload differ: a random nonce each time
    assert (await rotated.encode([PLAIN]))[0].data != sealed_k2.data
    with pytest.raises(CodecError, match="codec key 'k1', which is not in REMEDIATOR_CODEC_KEYS"):
        await _codec(K2, "k2").decode([sealed_k1])


async def test_tampered_payloads_and_swapped_key_ids_fail() -> None:
    codec = _codec(f"{K1},{K2}", "k1")
    [sealed] = await codec.encode([PLAIN])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 1
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(flipped))
    with pytest.raises(CodecError, match="fails authentication: tampered or truncated"):
        await codec.decode([tampered])
    relabelled = Payload(metadata={**sealed.metadata, "encryption-key-id": b"k2"}, data=sealed.data)
    with pytest.raises(CodecError, match="fails authentication"):
        await codec.decode([relabelled])


def test_key_settings_are_checked_and_no_keys_means_plain(tmp_path: Path) -> None:
    assert codec_for(Settings(state_dir=tmp_path)) is None
    with pytest.raises(ValueError, match="codec key 'k1': 16 bytes, AES-256 needs 32"):
        Settings(codec_keys="k1=" + base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ValueError, match="REMEDIATOR_CODEC_ACTIVE_KEY 'k3' must name one of the keys"):
        Settings(codec_keys=f"{K1},{K2}", codec_active_key="k3")
    with pytest.raises(ValueError, match="must name one of the keys"):
        Settings(codec_keys=f"{K1},{K2}")  # two keys: which one encrypts must be said


def test_dev_makes_its_key_once_and_keeps_it_private(tmp_path: Path) -> None:
    first = with_dev_key(Settings(state_dir=tmp_path))
    again = with_dev_key(Settings(state_dir=tmp_path))
    assert first.codec_keys.get_secret_value() == again.codec_keys.get_secret_value()
    assert codec_for(first) is not None and first.codec_active_key == "dev1"
    assert stat.S_IMODE((tmp_path / "codec-keys").stat().st_mode) == 0o600
    configured = Settings(state_dir=tmp_path, codec_keys=K1)
    assert with_dev_key(configured) is configured


@pytest.mark.integration
async def test_history_is_ciphertext_without_the_key_and_decodes_through_the_codec_server(
    dev_server: DevServer, dev_client: Client, api_keys: ApiKeys, tmp_path: Path
) -> None:
    marker = f"codec-marker-{uuid.uuid4().hex}"
    settings = Settings(
        state_dir=tmp_path,
        task_queue=f"codec-{uuid.uuid4().hex[:8]}",  # no worker: the history holds what the API wrote
        api_keys_file=api_keys.path,
        codec_keys=K1,
    )
    alert = {"labels": {"alertname": "CodecCheck", "team_secret": marker}, "annotations": {"summary": marker}}
    async with (
        serve(create_app(settings, dev_server.address)) as api,
        httpx.AsyncClient(auth=ByRoute(api_keys)) as http,
    ):
        response = await http.post(f"{api}/alerts", json=alert)
        assert response.status_code == 202, response.text
        incident = response.json()[0]["incident_id"]

    # dev_client has no codec: the history it fetches is what the server stores
    history = await dev_client.get_workflow_handle(incident).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    assert marker.encode() not in raw and b"binary/encrypted" in raw
    started = history.events[0].workflow_execution_started_event_attributes
    payloads = list(started.input.payloads)
    assert payloads and all(p.metadata["encoding"] == b"binary/encrypted" for p in payloads)

    body = json_format.MessageToJson(Payloads(payloads=payloads))
    async with serve(create_codec_app(settings, _codec(K1, "k1"))) as codec_url, httpx.AsyncClient() as http:
        refused = await http.post(f"{codec_url}/decode", content=body)
        viewer = api_keys.headers("viewer")
        decoded = await http.post(f"{codec_url}/decode", content=body, headers=viewer)
        garbage = await http.post(f"{codec_url}/decode", content=b"not json", headers=viewer)
        preflight = await http.options(
            f"{codec_url}/decode",
            headers={
                "Origin": "http://localhost:8233",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
            },
        )
    assert refused.status_code == 401
    assert decoded.status_code == 200, decoded.text
    [plain] = json_format.Parse(decoded.content, Payloads()).payloads
    assert plain.metadata["encoding"] == b"json/plain"
    assert json.loads(plain.data)["alert"]["annotations"]["summary"] == marker
    assert garbage.status_code == 422 and "payloads" in garbage.json()["detail"]
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
