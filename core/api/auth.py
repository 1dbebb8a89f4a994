"""Client-credentials authentication: bearer tokens in memory, and a limit on failed attempts per address."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core import credentials
from core.errors import ChargeLensError
from core.settings import database_path

TOKEN_LIFETIME_S = 3599
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0
MAX_LIVE_TOKENS = 10_000  # bounds memory if a client authenticates in a loop instead of reusing its token


class Unauthorized(ChargeLensError):
    title = "Unauthorized"
    status = 401
    headers = {"WWW-Authenticate": "Bearer"}


class TooManyRequests(ChargeLensError):
    title = "TooManyRequests"
    status = 429

    def __init__(self, detail: str, retry_after_s: int):
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after_s)}


class Authenticator:
    """Issues and checks bearer tokens; only SHA-256 digests of tokens are kept, with their expiry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, db_path: Callable[[], Path] = database_path):
        self._clock = clock
        self._db_path = db_path
        self._tokens: dict[bytes, float] = {}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, address: str, client_id: str, client_secret: str) -> dict:
        self._check_rate(address)
        # Read each time: deleting the file rotates the credentials without restarting the server.
        known = credentials.load_or_create(self._db_path())
        id_ok = hmac.compare_digest(client_id.encode(), known["clientId"].encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), known["clientSecret"].encode())
        if not (id_ok and secret_ok):
            self._fail(address)
            raise Unauthorized(
                "The client id or secret is wrong; `python -m core api credentials` prints the local ones."
            )
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._tokens = {k: v for k, v in self._tokens.items() if v > now}
            if len(self._tokens) >= MAX_LIVE_TOKENS:
                oldest = min(self._tokens, key=self._tokens.__getitem__)
                del self._tokens[oldest]
            self._tokens[_digest(token)] = now + TOKEN_LIFETIME_S
        return {"access_token": token, "expires_in": TOKEN_LIFETIME_S, "token_type": "Bearer"}

    def check(self, token: str | None) -> None:
        if not token:
            raise Unauthorized("This call needs a bearer token; get one from POST /api/v1/authentication.")
        with self._lock:
            expires = self._tokens.get(_digest(token))
        if expires is None or expires <= self._clock():
            raise Unauthorized("The bearer token is unknown or expired; authenticate again for a new one.")

    def _check_rate(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            recent = self._recent(address, now)
            if len(recent) >= MAX_FAILURES:
                wait = max(1, math.ceil(recent[0] + FAILURE_WINDOW_S - now))
                raise TooManyRequests(
                    f"Too many failed authentications from this address; wait {wait} s, then try again with the "
                    "right credentials.",
                    wait,
                )

    def _fail(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            self._recent(address, now).append(now)
            if len(self._failures) > MAX_LIVE_TOKENS:  # forget quiet addresses rather than grow without bound
                self._failures = {a: q for a, q in self._failures.items() if q and q[-1] > now - FAILURE_WINDOW_S}

    def _recent(self, address: str, now: float) -> deque[float]:
        recent = self._failures.setdefault(address, deque())
        while recent and recent[0] <= now - FAILURE_WINDOW_S:
            recent.popleft()
        return recent


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_bearer = HTTPBearer(auto_error=False, description="The access_token of POST /v1/authentication.")


async def require_token(request: Request, given: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Dependency of every /v1 route except authentication.

    Async on purpose, as the other light dependencies: FastAPI runs a plain `def` dependency on the thread pool,
    and a hop there and back per dependency cost more than the check itself and queued behind the database work.
    """
    request.app.state.auth.check(given.credentials if given else None)
