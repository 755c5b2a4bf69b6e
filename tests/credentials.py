"""API keys for tests, made with the real key store: one per role, plus named approvers.

`ByRoute` signs each request with the least powerful key the route should accept, so every test
that talks to the API also checks that its route asks for the right permission; a test that needs a
particular caller passes its own `Authorization` header, which `ByRoute` leaves alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.auth.keys import KeyStore
from api.auth.principal import ANY, Role

APPROVERS = ("alice", "bob", "carol")
# (method, path pattern, key name): first match wins; anything else is read with the viewer key.
ROUTE_KEYS: list[tuple[str, str, str]] = [
    ("POST", r"^/alerts", "sender"),
    ("POST", r"^/incidents/[^/]+/(approve|reject)$", "alice"),
    ("POST", r"^/(operations|schedules)", "operator"),
    ("DELETE", r"^/schedules", "operator"),
    ("*", r"^/auth/keys", "admin"),
]


@dataclass(frozen=True)
class ApiKeys:
    path: Path
    keys: dict[str, str]  # key name (a role's name, or an approver's) -> the key

    @classmethod
    def create(cls, path: Path, prefix: str = "") -> ApiKeys:
        """Keys named `<prefix><role>` and `<prefix>alice` ..., found here by role or approver name."""
        store = KeyStore(path)
        keys = {}
        for role in Role:
            keys[role.value] = store.create(f"{prefix}{role.value}", [role], environments=[ANY])[1]
        for name in APPROVERS:
            keys[name] = store.create(f"{prefix}{name}", [Role.APPROVER], environments=[ANY])[1]
        return cls(path=path, keys=keys)

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def for_request(self, request: httpx.Request) -> str:
        """A decision is made with the key of the approver its body names (alice, bob, carol)."""
        key = self.for_route(request.method, request.url.path)
        if key == self.keys["alice"] and request.content:
            try:
                named = json.loads(request.content).get("approver")
            except (ValueError, AttributeError):
                named = None
            if named in APPROVERS:
                return self.keys[named]
        return key

    def for_route(self, method: str, path: str) -> str:
        for verb, pattern, name in ROUTE_KEYS:
            if verb in ("*", method) and re.search(pattern, path):
                return self.keys[name]
        return self.keys["viewer"]


class ByRoute(httpx.Auth):
    def __init__(self, keys: ApiKeys) -> None:
        self.keys = keys

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {self.keys.for_request(request)}"
        yield request
