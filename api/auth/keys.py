"""API keys: random, shown once, stored only as a SHA-256 hash in a JSON file (REMEDIATOR_API_KEYS_FILE).

A key reads `rmd_<id>_<secret>`: the id finds the record without a scan, the secret is 256 random bits,
so a plain SHA-256 (no salt, no slow hash) is enough: nothing about it can be guessed offline. The file
is replaced atomically with mode 0600 and re-read whenever it changes, so a revoke takes effect on the
next request of a running API.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.auth.principal import ANY, Principal, Role
from workflows.actions import Risk

PREFIX = "rmd_"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$"


class KeyStoreError(Exception):
    """The key file is unreadable or malformed, or a create/revoke cannot be done; says which and why."""


class KeyRecord(BaseModel):
    """One key as stored: everything but the secret, which only its hash represents."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[0-9a-f]{12}$")
    name: str = Field(pattern=NAME_PATTERN)
    roles: list[Role] = Field(min_length=1)
    environments: list[str] = []
    services: list[str] = [ANY]
    risks: list[Risk] = []
    created_at: datetime
    revoked: bool = False
    revoked_at: datetime | None = None
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    def principal(self) -> Principal:
        return Principal(
            name=self.name,
            source="key",
            roles=frozenset(self.roles),
            environments=tuple(self.environments),
            services=tuple(self.services),
            risks=tuple(self.risks),
        )


RECORDS = TypeAdapter(list[KeyRecord])


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str | None:
    """The id part of `rmd_<id>_<secret>`, or None when the text is not shaped like our key."""
    if not key.startswith(PREFIX):
        return None
    ident, sep, secret = key.removeprefix(PREFIX).partition("_")
    return ident if sep and secret else None


class KeyStore:
    """The key file. Reads are cached per (inode, mtime, size); writes hold an flock on `<file>.lock`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._records: list[KeyRecord] = []

    def records(self) -> list[KeyRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._records = None, []
            return []
        except OSError as err:
            raise KeyStoreError(f"{self.path}: cannot read: {err}") from None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._records, self._seen = self._read(), seen
        return list(self._records)

    def _read(self) -> list[KeyRecord]:
        try:
            return RECORDS.validate_json(self.path.read_bytes())
        except OSError as err:
            raise KeyStoreError(f"{self.path}: cannot read: {err}") from None
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top)"
            raise KeyStoreError(f"{self.path}: {where}: {first['msg']}") from None

    def active(self) -> list[KeyRecord]:
        return [r for r in self.records() if not r.revoked]

    def verify(self, key: str) -> KeyRecord | None:
        """The active record this key belongs to, compared in constant time; None for any other key."""
        ident = key_id(key)
        if ident is None:
            return None
        presented = digest(key)
        for record in self.active():
            # compare_digest on every candidate of that id: timing says nothing about the hash.
            if record.id == ident and hmac.compare_digest(record.sha256, presented):
                return record
        return None

    def create(
        self,
        name: str,
        roles: list[Role],
        environments: list[str] | None = None,
        services: list[str] | None = None,
        risks: list[Risk] | None = None,
    ) -> tuple[KeyRecord, str]:
        """A new key: its record (stored) and the key itself (returned once, stored nowhere)."""
        with self._locked():
            records = self._fresh()
            if any(r.name == name for r in records if not r.revoked):
                raise KeyStoreError(
                    f"an active key named {name!r} exists; revoke it first or pick another name"
                )
            ident = secrets.token_hex(6)
            key = f"{PREFIX}{ident}_{secrets.token_urlsafe(32)}"
            try:
                record = KeyRecord(
                    id=ident,
                    name=name,
                    roles=sorted(set(roles)),
                    environments=environments or [],
                    services=services or [ANY],
                    risks=risks or [],
                    created_at=datetime.now(UTC),
                    sha256=digest(key),
                )
            except ValidationError as err:
                first = err.errors()[0]
                raise KeyStoreError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
            self._write([*records, record])
            return record, key

    def revoke(self, name_or_id: str) -> list[KeyRecord]:
        """Revoke the active key with this id, or the active key of this name; the revoked records."""
        with self._locked():
            records = self._fresh()
            hits = [r for r in records if not r.revoked and name_or_id in (r.id, r.name)]
            if not hits:
                raise KeyStoreError(f"no active key with id or name {name_or_id!r} in {self.path}")
            now = datetime.now(UTC)
            revoked = {r.id: r.model_copy(update={"revoked": True, "revoked_at": now}) for r in hits}
            self._write([revoked.get(r.id, r) for r in records])
            return list(revoked.values())

    def _fresh(self) -> list[KeyRecord]:
        self._seen = None  # under the lock: read what is on disk now, not the cache
        return self.records()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600), "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, records: list[KeyRecord]) -> None:
        # A temporary file in the same directory, then rename: readers see the old or the new file,
        # never half of one; mkstemp creates it 0600, so no hash is ever world-readable.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(RECORDS.dump_json(records, indent=2) + b"\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
