"""Keyset paging: opaque, tamper-evident continuation tokens and the one page shape of API.md."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from urllib.parse import quote, urlencode

from fastapi import Request

from core.api.params import Paging
from core.errors import InputError

_SIGNATURE_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Pager:
    """Signs the position after a page together with the listing it belongs to (kind and filters).

    The key lives as long as the process: a token outlives neither a server restart nor its listing, and
    a client that sends a changed or foreign token gets a 400 it can act on instead of a wrong page.
    """

    def __init__(self, key: bytes | None = None):
        self._key = key or secrets.token_bytes(32)

    def encode(self, kind: str, scope: dict, position: list) -> str:
        payload = json.dumps({"k": kind, "s": scope, "p": position}, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, token: str, kind: str) -> tuple[dict, list]:
        """(scope, position) of a token this process issued for this kind of listing; InputError otherwise."""
        try:
            body, signature = token.split(".")
            payload = _unb64(body)
            valid = hmac.compare_digest(_unb64(signature), self._sign(payload))
            data = json.loads(payload) if valid else None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict) or data.get("k") != kind or not isinstance(data.get("p"), list):
            raise _bad_token()
        if not isinstance(data.get("s"), dict):
            raise _bad_token()
        return data["s"], data["p"]

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _bad_token() -> InputError:
    return InputError(
        "The continuationToken is not one this server gave for this listing (changed, from another listing, or "
        "from before a restart); start the listing again without it.",
        errors={"query.continuationToken": "not a valid continuation token for this listing"},
    )


def resume(pager: Pager, page: Paging, kind: str, scope: dict) -> list | None:
    """The position after which this page starts (None for the first page); the token must match the listing."""
    if page.token is None:
        return None
    token_scope, position = pager.decode(page.token, kind)
    if token_scope != scope:
        raise _bad_token()
    return position


def page_reply(
    request: Request,
    pager: Pager,
    page: Paging,
    kind: str,
    scope: dict,
    rows: Sequence[dict],
    position_of: Callable[[dict], list],
    record: Callable[[dict], dict],
    fixed_query: dict | None = None,
) -> dict:
    """The page shape; `rows` holds up to size + 1 rows, the extra one only telling that more follow."""
    more = len(rows) > page.size
    rows = rows[: page.size]
    token = pager.encode(kind, scope, position_of(rows[-1])) if more and rows else None
    return {
        "data": [record(r) for r in rows],
        "links": {"next": _next_link(request, token, fixed_query or {}) if token else None},
        "meta": {"continuationToken": token, "pageSize": page.size},
    }


def _next_link(request: Request, token: str, fixed_query: dict) -> str:
    # The raw path keeps an entity id's %2F encoded; the decoded path would no longer be a valid URL.
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.url.path)
    query = {k: v for k, v in request.query_params.items() if k != "continuationToken"}
    query.update({k: v for k, v in fixed_query.items() if v is not None})
    query["continuationToken"] = token
    return f"{request.url.scheme}://{request.url.netloc}{path}?{urlencode(query)}"
