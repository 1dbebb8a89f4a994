"""ASGI layers of the API: entity ids routed on the raw path (so `%2F` stays inside an id), a JSON body limit,
security headers on every reply."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import quote, unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
_ENTITIES = ("v1", "entities")
_TOO_LARGE = "The request body is larger than 1 MB; send a smaller body."


class EntityIdConvertor(Convertor[str]):
    """`{entityId:entity}`: one still-encoded path segment, decoded only here, so an id may hold `/`."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


register_url_convertor("entity", EntityIdConvertor())


class EntityPathMiddleware:
    """Puts the entity segment of /v1/entities/<id>/... back in its percent-encoded form before routing.

    Servers decode `%2F` to `/` in `path`, after which `fleet%2Fev` and a route below `fleet` look alike; the
    raw path still tells them apart. Only the entity segment stays encoded; the rest is routed as usual.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = _with_encoded_entity(scope)
        await self.app(scope, receive, send)


def _with_encoded_entity(scope: Scope) -> Scope:
    root = scope.get("root_path", "")
    path = scope["path"]
    if not path.startswith(root):
        return scope
    raw = scope.get("raw_path")
    if raw:
        text = raw.decode("latin-1")
        prefix = quote(root)
        if not text.startswith(prefix):
            return scope
        parts = text[len(prefix) :].split("/")
        if len(parts) < 4 or tuple(parts[1:3]) != _ENTITIES or not parts[3]:
            return scope
        rest = [unquote(p) for p in parts[4:]]
        segment = parts[3]
    else:
        # Without the raw path an id with "/" cannot be told apart; still encode the segment for the convertor.
        parts = path[len(root) :].split("/")
        if len(parts) < 4 or tuple(parts[1:3]) != _ENTITIES or not parts[3]:
            return scope
        rest = parts[4:]
        segment = quote(parts[3], safe="")
    return {**scope, "path": root + "/".join(["", *_ENTITIES, segment, *rest])}


class BodyLimitMiddleware:
    """413 PayloadTooLarge for a JSON body over 1 MB, told by Content-Length or counted while it streams in.

    Multipart uploads and CSV bodies (a tariff's prices) are left to their own, larger limit (the max_upload_mb
    setting), which the routes that take them check.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if _own_limit(scope["path"], headers.get(b"content-type", b"").lower()):
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await _drain(receive, DRAIN_BYTES)
            await _too_large(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_BYTES)
                    # Raised inside the route's body reading, so the app's one error handler answers it.
                    raise HTTPException(413, detail=_TOO_LARGE)
            return message

        await self.app(scope, counted, send)


DRAIN_BYTES = 16 * 1024 * 1024


def _own_limit(path: str, content_type: bytes) -> bool:
    """Bodies their routes limit by max_upload_mb: multipart uploads, and a tariff's prices as CSV."""
    return content_type.startswith(b"multipart/") or (content_type.startswith(b"text/csv") and path.endswith("/prices"))


async def _drain(receive: Receive, limit: int) -> None:
    """Read (and drop) what the client is still sending, up to `limit`: a reply sent while the client still writes
    its body, then the connection closed, reaches many clients as a reset instead of the 413."""
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _too_large(send: Send) -> None:
    body = json.dumps({"title": "PayloadTooLarge", "status": 413, "detail": _TOO_LARGE}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
)
V1_HEADERS = ((b"content-security-policy", b"default-src 'none'"),)


class SecurityHeadersMiddleware:
    """API.md's headers on every reply, set as the reply starts; an unexpected failure is answered here.

    A plain ASGI layer rather than an `@app.middleware("http")` function: that wrapper runs every request through a
    task group and memory streams, which cost more CPU than most of the routes' own work. The 500 reply of an
    unexpected failure is made here (by `on_error`, the app's one handler for it), not outside, so that it carries
    the headers too.
    """

    def __init__(self, app: ASGIApp, on_error: Callable[[Request, Exception], Awaitable[Response]]):
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = SECURITY_HEADERS + (V1_HEADERS if _under_v1(scope) else ())
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in extra}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception as exc:
            if started:  # part of the reply is out: nothing better to send than closing it
                raise
            response = await self.on_error(Request(scope, receive), exc)
            await response(scope, receive, with_headers)


def _under_v1(scope: Scope) -> bool:
    return scope["path"].startswith(f"{scope.get('root_path', '')}/v1")


UNREADABLE = (
    "The request could not be read as HTTP: its request line or headers are malformed or too long (the address, "
    "with its query, is limited to about 64 KB). Send a well-formed, shorter request, e.g. with fewer repeated "
    "query parameters."
)


def unreadable_requests_in_the_error_shape() -> None:
    """Requests the HTTP layer cannot parse get the API's one error shape instead of uvicorn's plain text.

    uvicorn's compiled HTTP protocol answers a request it cannot read (a request line over the parser's limit,
    bytes that are not HTTP) with a text/plain 400 before any app sees it. The same 400, connection closed, now
    carries the JSON problem (title, status, detail) and the security headers every other reply has.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
    except ImportError:  # the pure-Python protocol: its refusals stay as uvicorn sends them
        return

    body = json.dumps({"title": "BadRequest", "status": 400, "detail": UNREADABLE}).encode()

    def send_400_response(self: HttpToolsProtocol, msg: str) -> None:
        content = [STATUS_LINE[400]]
        for name, value in (*self.server_state.default_headers, *SECURITY_HEADERS):
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()

    HttpToolsProtocol.send_400_response = send_400_response
