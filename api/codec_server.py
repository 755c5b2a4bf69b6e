"""The codec server (`remediator codec-server`): decodes our encrypted payloads for the Temporal Web UI
and `temporal workflow show --codec-endpoint`, for callers the API would let read incidents.

Temporal's remote codec protocol: `POST /decode` and `POST /encode`, each taking and answering
`{"payloads": [...]}` in protobuf JSON (metadata values and data base64). The UI calls it from the
browser, so the UI's origins get CORS; with "include credentials" set in the UI it sends the user's
Authorization header, which the API's own authentication checks (ReaderDep).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload, Payloads

from activities.config import Settings
from api import errors
from api.auth.credentials import Authenticator
from api.auth.deps import ReaderDep
from worker.codec import CodecError, EncryptionCodec

JSON = "application/json"
Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


async def _transform(request: Request, transform: Transform) -> Response:
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
        done = await transform(payloads.payloads)
    except (json_format.ParseError, DecodeError) as err:
        return _problem(422, f'body: not {{"payloads": [...]}} in protobuf JSON: {err}')
    except CodecError as err:
        return _problem(422, str(err))
    return Response(json_format.MessageToJson(Payloads(payloads=done)), media_type=JSON)


def _problem(status: int, detail: str) -> Response:
    return Response(json.dumps({"detail": detail}), status_code=status, media_type=JSON)


def create_codec_app(settings: Settings, codec: EncryptionCodec) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.authenticator = Authenticator(settings)
        app.state.authenticator.check()  # no credential store: refuse to start, as the API does
        yield

    app = FastAPI(title="Remediator codec server", lifespan=lifespan)
    app.state.settings = settings  # the error handlers read it
    errors.install(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.codec_cors_origins,
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["Content-Type", "X-Namespace", "Authorization"],
    )

    @app.post("/decode")
    async def decode(request: Request, _: ReaderDep) -> Response:
        return await _transform(request, codec.decode)

    @app.post("/encode")
    async def encode(request: Request, _: ReaderDep) -> Response:
        return await _transform(request, codec.encode)

    return app
