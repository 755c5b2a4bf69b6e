"""Browser sessions of the web board, kept in the API's memory.

A person logs in once with an API key or an OIDC token; the browser then holds only a random session
id in an HttpOnly, SameSite=Strict cookie scoped to /board. The server keeps the SHA-256 of that id (a
leaked memory dump or log line holds no usable cookie), the credential, and the session's CSRF token.
The credential is checked again on every request, so a revoked key or an expired token ends the
session at once. Sessions live in one API process: a restart, or another replica behind a load
balancer without sticky sessions, asks the person to log in again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "remediator_board"
LIFETIME_SECONDS = 8 * 3600  # a working day; the credential's own expiry (OIDC) may end it sooner
MAX_SESSIONS = 10_000  # only authenticated people make sessions; this bounds memory all the same


@dataclass(frozen=True)
class Session:
    credential: str
    csrf: str
    expires_at: float

    def csrf_matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), presented.encode())


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def create(self, credential: str) -> str:
        """A new session for `credential`; returns the id the cookie carries (stored only hashed)."""
        now = time.monotonic()
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires_at > now}
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].expires_at)
            del self._sessions[oldest]
        session_id = secrets.token_urlsafe(32)
        self._sessions[_digest(session_id)] = Session(
            credential=credential, csrf=secrets.token_urlsafe(32), expires_at=now + LIFETIME_SECONDS
        )
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        key = _digest(session_id)
        session = self._sessions.get(key)
        if session is None or session.expires_at <= time.monotonic():
            self._sessions.pop(key, None)
            return None
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(_digest(session_id), None)
