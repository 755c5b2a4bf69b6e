"""Typed dependencies of the routes: the Temporal client, the settings, the playbooks and policy.

Who is calling and what it may do: api/auth/deps.py (`ReaderDep`, `SenderDep`, ...)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import Field
from temporalio.client import Client

from activities.config import Settings
from api.ingest import Pinning
from api.schemas import ErrorBody


def get_client(request: Request) -> Client:
    # Lazily connected (see app.lifespan): no I/O here, so a bad body is a 422 even while Temporal is
    # down; the first call on it connects, and errors.py turns a failed connect into a 503.
    client: Client = request.app.state.client
    return client


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pinning(request: Request) -> Pinning:
    # Loaded once in app.lifespan: a malformed playbook or policy stops the API at startup instead.
    pinning: Pinning = request.app.state.pinning
    return pinning


ClientDep = Annotated[Client, Depends(get_client)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PinningDep = Annotated[Pinning, Depends(get_pinning)]


class AuthErrorBody(ErrorBody):
    error: str = Field(description="`unauthenticated` or `forbidden`")
    permission: str | None = Field(default=None, description="a 403's missing permission")


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": AuthErrorBody, "description": "no valid credential (see WWW-Authenticate)"},
    403: {"model": AuthErrorBody, "description": "the caller's roles lack the permission `permission`"},
}
