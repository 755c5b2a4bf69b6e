"""Refuse request bodies over REMEDIATOR_MAX_BODY_BYTES with a JSON 413.

A declared Content-Length is checked before anything is read; a chunked body is counted as it
streams in. (FastAPI's own limit answers plain text when Content-Length is declared.)
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import too_large


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException passes FastAPI's body reading untouched and reaches the
                    # app's handler in errors.py, which answers the same JSON 413.
                    raise HTTPException(413)
            return message

        await self.app(scope, counting_receive, send)
