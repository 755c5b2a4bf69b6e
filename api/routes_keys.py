"""API keys over HTTP, for admins: list, create (the key is in the answer, once), revoke.

The same store as `remediator auth key ...`, which works on the file directly (bootstrap).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth.credentials import Authenticator
from api.auth.deps import AdminDep
from api.auth.keys import NAME_PATTERN, KeyRecord, KeyStore, KeyStoreError
from api.auth.principal import ANY, Role
from api.schemas import ErrorBody
from workflows.actions import Risk

router = APIRouter(
    prefix="/auth/keys",
    tags=["auth"],
    responses={422: {"model": ErrorBody, "description": "invalid request; `message` names the field"}},
)


class KeyView(BaseModel):
    """A key as listed: never the secret, not even its hash."""

    id: str
    name: str
    roles: list[Role]
    environments: list[str]
    services: list[str]
    risks: list[Risk]
    created_at: datetime
    revoked: bool

    @classmethod
    def of(cls, record: KeyRecord) -> KeyView:
        return cls.model_validate(record.model_dump(exclude={"sha256", "revoked_at"}))


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    roles: list[Role] = Field(min_length=1)
    environments: list[str] = []
    services: list[str] = [ANY]
    risks: list[Risk] = []


class KeyCreated(KeyView):
    key: str = Field(description="the API key; shown this once and stored nowhere")


def _store(request: Request) -> KeyStore:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.keys


@router.get("")
async def list_keys(request: Request, _: AdminDep) -> list[KeyView]:
    """Every key, active and revoked, without secrets."""
    return [KeyView.of(r) for r in await run_in_threadpool(_store(request).records)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {"model": ErrorBody}})
async def create_key(request: Request, body: KeyCreate, _: AdminDep) -> KeyCreated:
    """A new key; the answer holds the key itself, which cannot be shown again."""
    store = _store(request)
    try:
        record, key = await run_in_threadpool(
            store.create, body.name, body.roles, body.environments, body.services, body.risks
        )
    except KeyStoreError as err:
        raise HTTPException(409, str(err)) from None
    return KeyCreated(**KeyView.of(record).model_dump(), key=key)


KeyRef = Annotated[str, Path(pattern=NAME_PATTERN, description="the key's id or its name")]


@router.delete("/{key}", responses={404: {"model": ErrorBody}})
async def revoke_key(request: Request, key: KeyRef, _: AdminDep) -> list[KeyView]:
    """Revoke a key by id or name; the next request with it is refused (no restart needed)."""
    try:
        revoked = await run_in_threadpool(_store(request).revoke, key)
    except KeyStoreError as err:
        raise HTTPException(404, str(err)) from None
    return [KeyView.of(r) for r in revoked]
