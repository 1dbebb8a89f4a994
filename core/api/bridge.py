"""A synchronous httpx transport that hands requests to the API app in this process (no socket, same code path)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import httpx
from starlette.types import ASGIApp, Message


class InProcessTransport(httpx.BaseTransport):
    """Runs each request through the ASGI app on a private event loop in a worker thread.

    The dashboard uses it for its own feature API, so that a toggle goes through authentication, validation and
    the one error shape exactly as a remote client's call would, whether or not a server socket is listening.
    """

    def __init__(self, app: ASGIApp):
        self._app = app
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="api-bridge")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._pool.submit(asyncio.run, self._call(request)).result()

    async def _call(self, request: httpx.Request) -> httpx.Response:
        raw_path = request.url.raw_path.split(b"?", 1)[0]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path,
            "root_path": "",
            "query_string": request.url.query,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 0),
            "server": (request.url.host, request.url.port or 80),
        }
        body = request.read()
        sent = False
        status, headers, chunks = 500, [], []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        return httpx.Response(status, headers=headers, content=b"".join(chunks), request=request)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
