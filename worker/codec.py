"""Encryption at rest: every payload written to Temporal history is AES-256-GCM ciphertext.

Alert text, evidence, Ansible diffs, Terraform plans and LLM transcripts all travel as payloads, so
with REMEDIATOR_CODEC_KEYS set the Temporal server (and anyone reading its database or a
`temporal workflow show` without the key) sees only ciphertext. Each payload carries the id of the
key that sealed it: the active key encrypts, any listed key decrypts, so keys rotate by adding a new
one, making it active, and dropping the old one once no open history needs it.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from activities.config import Settings, parse_keys

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12  # 96 bits, random per payload: AES-GCM's recommended nonce
DEV_KEY_FILE = "codec-keys"  # under the state dir: `remediator dev`'s own key


class CodecError(Exception):
    """A payload cannot be decrypted (unknown key id, tampered), or the active key is not among the keys."""


def new_key_entry(kid: str) -> str:
    return f"{kid}={base64.b64encode(secrets.token_bytes(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise CodecError(
                f"the active codec key {active!r} is not among the keys ({', '.join(keys) or 'none'})"
            )
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active = active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        kid = self._active.encode()
        # The key id is bound as associated data: moving ciphertext under another id fails the tag.
        sealed = self._keys[self._active].encrypt(nonce, payload.SerializeToString(), kid)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid}, data=nonce + sealed)

    def _decrypt(self, payload: Payload) -> Payload:
        kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._keys.get(kid)
        if cipher is None:
            raise CodecError(f"payload sealed with codec key {kid!r}, which is not in REMEDIATOR_CODEC_KEYS")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise CodecError(
                f"payload sealed with codec key {kid!r} fails authentication: tampered or truncated"
            ) from None
        return Payload.FromString(plain)


def dev_key_entry(state_dir: Path) -> str:
    """`remediator dev`'s own key, made on its first start and kept (0600) in the state dir."""
    path = state_dir / DEV_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_key_entry("dev1") + "\n")
    return path.read_text().strip()


def codec_for(settings: Settings) -> EncryptionCodec | None:
    """The codec the settings ask for; None (plain payloads) without keys."""
    keys = parse_keys(settings.codec_keys.get_secret_value())
    if not keys:
        return None
    return EncryptionCodec(keys, settings.codec_active_key or next(iter(keys)))


def with_dev_key(settings: Settings) -> Settings:
    """`remediator dev` encrypts too: without configured keys it uses (and on first start makes) its own."""
    if settings.codec_keys.get_secret_value():
        return settings
    entry = dev_key_entry(settings.state_dir)
    return settings.model_copy(
        update={"codec_keys": SecretStr(entry), "codec_active_key": entry.split("=")[0]}
    )
