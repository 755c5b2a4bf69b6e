"""Route dependencies: who is calling (`authenticate`) and may it do this (`require`).

The `Authenticate` middleware has already turned the Authorization header into a principal (or
answered 401) before a route runs; these read it and check the route's permission (or answer 403).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from api.auth.credentials import Authenticator, Forbidden
from api.auth.principal import Permission, Principal


async def authenticate(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route outside the middleware's reach still gets a real check
        authenticator: Authenticator = request.app.state.authenticator
        principal = await authenticator.principal(request.headers.get("authorization"))
        request.state.principal = principal
    return principal


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.can(permission):
            raise Forbidden(principal, permission.value)
        return principal

    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency


ReaderDep = Annotated[Principal, Depends(require(Permission.READ))]
SenderDep = Annotated[Principal, Depends(require(Permission.SEND))]
DeciderDep = Annotated[Principal, Depends(require(Permission.DECIDE))]
OperatorDep = Annotated[Principal, Depends(require(Permission.OPERATE))]
AdminDep = Annotated[Principal, Depends(require(Permission.MANAGE_KEYS))]
