"""The httpx client for a Charge Sessions platform: the hosted one or ChargeLens's own API (API.md)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

# ======================================================================================================
# [ours] Contract choices that the platform leaves open (API.md marks them [ours]). They live here, and
# only here, so that they can be changed in one place once checked against the hosted service.
# ======================================================================================================
API_VERSION_PREFIX = "/v1"  # [doc] every path of the contract starts with it
AUTH_PATH = "/v1/authentication"  # [doc] body {"clientId", "clientSecret"} -> {"access_token", "expires_in"}
PAGE_SIZE = 100  # [ours] the local server accepts 1..1000 (the platform's default is 25 [doc])
PAGE_DATA_KEY = "data"  # [ours] page shape {"data", "links": {"next"}, "meta": {"continuationToken", "pageSize"}}
PAGE_TOKEN_PARAM = "continuationToken"  # [ours] sent back as a query parameter, as it was given
PAGE_SIZE_PARAM = "pageSize"  # [ours]
ERROR_FIELDS = ("title", "status", "detail", "errors")  # [ours, tolerant] the error body; anything else copes
BATTERY_CAPACITY_UNIT = "kWh"  # [ours] PUT battery-capacity {"value", "unit"}
LOCATION_DEFAULT_RADIUS_M = 150  # [ours]
CAPTURE_FEATURE = "CaptureChargeSessions"  # [doc] PATCH features {"feature", "enabled"}
TOKEN_RENEW_MARGIN_S = 60.0  # renew this long before the announced expiry, so a token never dies in flight


def entity_path(entity_id: str, *rest: str) -> str:
    """[ours] Entity ids may hold `/` locally: always percent-encode the whole id as one path segment."""
    return "/".join([f"{API_VERSION_PREFIX}/entities", quote(entity_id, safe=""), *rest])


def locations_path(entity_id: str | None, location_id: str | None = None) -> str:
    """[ours] Entity locations live below the entity; locations for all entities at /v1/locations."""
    base = entity_path(entity_id, "locations") if entity_id is not None else f"{API_VERSION_PREFIX}/locations"
    return base if location_id is None else f"{base}/{quote(location_id, safe='')}"


def format_time(value: datetime | str) -> str:
    """[doc + ours] RFC 3339 in UTC with Z; a naive datetime is refused rather than guessed."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; pass an aware datetime (e.g. with tzinfo=UTC).")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ======================================================================================================

# Transient failures only: the request may succeed when sent again. Anything else surfaces at once.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_EXCEPTIONS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout)
# A POST that may have reached the server is not sent twice (it could create a second location).
UNSENT_EXCEPTIONS = (httpx.ConnectError, httpx.ConnectTimeout)
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
MAX_RETRY_AFTER_S = 300.0  # a platform asking for a longer wait gets a PlatformError instead of a frozen caller


class PlatformError(Exception):
    """A call that failed for good: HTTP status (None when no reply came), title and a sentence to act on."""

    def __init__(self, status: int | None, title: str, detail: str, errors: dict | None = None):
        super().__init__(f"{status or 'no reply'} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or {}


class PlatformClient:
    """Authenticated calls with token caching, retries of transient failures and paged listings.

    `transport` (an httpx transport) and `sleep`/`clock` are injected so that tests can run it against a
    fake platform without waiting.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._http = httpx.Client(base_url=base_url.rstrip("/"), transport=transport, timeout=timeout)
        self._client_id = client_id
        self._client_secret = client_secret
        self._max_retries = max_retries
        self._page_size = page_size
        self._sleep = sleep
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:  # never show the secret or the token
        return f"PlatformClient({self.url!r}, client_id={self._client_id!r})"

    @property
    def url(self) -> str:
        """The platform's API address (never the credentials)."""
        return str(self._http.base_url)

    # -- entities and their settings --------------------------------------------------------------------
    def entities(self, *, page_size: int | None = None) -> Iterator[dict]:
        return self._pages(f"{API_VERSION_PREFIX}/entities", {}, page_size)

    def entity(self, entity_id: str) -> dict:
        return self._call("GET", entity_path(entity_id))

    def features(self, entity_id: str) -> list[dict]:
        return self._call("GET", entity_path(entity_id, "features"))

    def set_feature(self, entity_id: str, feature: str, enabled: bool) -> list[dict]:
        # Setting a state is idempotent, so a PATCH may be sent again after a timeout.
        body = {"feature": feature, "enabled": enabled}
        return self._call("PATCH", entity_path(entity_id, "features"), json=body, idempotent=True)

    def battery_capacity(self, entity_id: str) -> float | None:
        return self._call("GET", entity_path(entity_id, "battery-capacity")).get("value")

    def set_battery_capacity(self, entity_id: str, kwh: float) -> float:
        body = {"value": kwh, "unit": BATTERY_CAPACITY_UNIT}
        return self._call("PUT", entity_path(entity_id, "battery-capacity"), json=body)["value"]

    # -- locations ---------------------------------------------------------------------------------------
    def locations(self, entity_id: str | None = None, *, page_size: int | None = None) -> Iterator[dict]:
        return self._pages(locations_path(entity_id), {}, page_size)

    def add_location(
        self,
        label: str,
        latitude: float,
        longitude: float,
        radius: float = LOCATION_DEFAULT_RADIUS_M,
        *,
        entity_id: str | None = None,
    ) -> dict:
        body = {"label": label, "latitude": latitude, "longitude": longitude, "radius": radius}
        return self._call("POST", locations_path(entity_id), json=body)

    def update_location(
        self,
        location_id: str,
        label: str,
        latitude: float,
        longitude: float,
        radius: float = LOCATION_DEFAULT_RADIUS_M,
        *,
        entity_id: str | None = None,
    ) -> dict:
        body = {"label": label, "latitude": latitude, "longitude": longitude, "radius": radius}
        return self._call("PUT", locations_path(entity_id, location_id), json=body)

    def delete_location(self, location_id: str, *, entity_id: str | None = None) -> None:
        self._call("DELETE", locations_path(entity_id, location_id))

    # -- readings and sessions ---------------------------------------------------------------------------
    def readings(
        self, entity_id: str, start: datetime | str, end: datetime | str | None = None, *, page_size: int | None = None
    ) -> Iterator[dict]:
        return self._pages(entity_path(entity_id, "readings"), _window(start, end), page_size)

    def last_reading(self, entity_id: str) -> dict:
        return self._call("GET", entity_path(entity_id, "readings", "last"))

    def charge_sessions(
        self, entity_id: str, start: datetime | str, end: datetime | str | None = None, *, page_size: int | None = None
    ) -> Iterator[dict]:
        return self._pages(entity_path(entity_id, "charge-sessions"), _window(start, end), page_size)

    # -- the one request method --------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: dict | None = None, json=None, idempotent: bool | None = None):
        """Send one authenticated request; JSON reply (None for 204), or PlatformError."""
        response = self._request(method, path, params=params, json=json, idempotent=idempotent)
        if response.status_code == 401:
            # The token died early (server restart, revoked): authenticate once more, then give up.
            self._token = None
            response = self._request(method, path, params=params, json=json, idempotent=idempotent)
        if response.status_code >= 400:
            raise _error(response)
        if response.status_code == 204 or not response.content:
            return None
        return _json(response)

    def _request(
        self, method: str, path: str, *, params=None, json=None, idempotent: bool | None = None, auth: bool = True
    ) -> httpx.Response:
        """Send with retries for transient failures (backoff, or Retry-After); returns the last response."""
        idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS") if idempotent is None else idempotent
        retryable = RETRY_EXCEPTIONS if idempotent else UNSENT_EXCEPTIONS
        attempt = 0
        while True:
            headers = {"Authorization": f"Bearer {self._bearer()}"} if auth else {}
            try:
                response = self._http.request(method, path, params=params, json=json, headers=headers)
            except retryable as exc:
                if attempt >= self._max_retries:
                    raise _transport_error(exc, attempt) from None
                self._sleep(_backoff(attempt))
                attempt += 1
                continue
            except httpx.TimeoutException as exc:
                raise _transport_error(exc, attempt) from None
            except httpx.HTTPError as exc:
                raise PlatformError(None, "ConnectionFailed", f"The platform could not be reached ({exc}).") from None
            retry = response.status_code == 429 or (idempotent and response.status_code in RETRY_STATUSES)
            if not retry or attempt >= self._max_retries:
                return response
            wait = _retry_after(response)
            if wait is None:
                wait = _backoff(attempt)
            elif wait > MAX_RETRY_AFTER_S:
                return response  # surfaced as a 429 PlatformError: waiting that long is the caller's choice
            response.close()
            self._sleep(wait)
            attempt += 1

    def _bearer(self) -> str:
        if self._token is None or self._clock() >= self._renew_at:
            self._authenticate()
        return self._token

    def _authenticate(self) -> None:
        body = {"clientId": self._client_id, "clientSecret": self._client_secret}
        response = self._request("POST", AUTH_PATH, json=body, idempotent=True, auth=False)
        if response.status_code >= 400:
            raise _error(response)
        reply = _json(response)
        token, lifetime = reply.get("access_token"), reply.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
            raise PlatformError(
                response.status_code, "InvalidResponse", "The authentication reply has no access_token/expires_in."
            )
        self._token = token
        # Renew shortly before expiry; a very short lifetime renews at half of it instead.
        self._renew_at = self._clock() + max(lifetime - TOKEN_RENEW_MARGIN_S, lifetime / 2)

    def _pages(self, path: str, params: dict, page_size: int | None) -> Iterator[dict]:
        """Every item of a paged listing, following continuationToken; stops at a null token or an empty page."""
        query = {**params, PAGE_SIZE_PARAM: page_size or self._page_size}
        sent: str | None = None
        while True:
            page = self._call("GET", path, params=query)
            data = page.get(PAGE_DATA_KEY) if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise PlatformError(200, "InvalidResponse", f"The page of {path} has no '{PAGE_DATA_KEY}' list.")
            token = (page.get("meta") or {}).get(PAGE_TOKEN_PARAM)
            if token is not None and token == sent:
                # Following it again would return this same page forever; fail rather than loop or repeat items.
                raise PlatformError(
                    200,
                    "PagingLoop",
                    f"The platform returned the same continuationToken twice while listing {path}; "
                    "the listing is incomplete, try again later.",
                )
            yield from data
            if not token or not data:
                return
            sent = token
            query = {**query, PAGE_TOKEN_PARAM: token}


def _window(start: datetime | str, end: datetime | str | None) -> dict:
    window = {"start": format_time(start)}
    if end is not None:
        window["end"] = format_time(end)
    return window


def _backoff(attempt: int) -> float:
    return min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        raise PlatformError(
            response.status_code,
            "InvalidResponse",
            f"The platform answered {response.status_code} with a body that is not JSON: {_snippet(response)}",
        ) from None


def _error(response: httpx.Response) -> PlatformError:
    """The platform's error as a PlatformError, whatever its body: the JSON error shape, other JSON, or text."""
    status = response.status_code
    fallback = response.reason_phrase or httpx.codes.get_reason_phrase(status) or "Error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("title") or body.get("detail")):
        errors = body.get("errors") if isinstance(body.get("errors"), dict) else None
        return PlatformError(status, str(body.get("title") or fallback), str(body.get("detail") or fallback), errors)
    detail = _snippet(response) or f"The platform answered {status} {fallback} without an explanation."
    if status == 429 and (wait := _retry_after(response)) is not None:
        detail = f"{detail} (the platform asks to wait {wait:.0f} s)"
    return PlatformError(status, fallback.replace(" ", ""), detail)


def _snippet(response: httpx.Response, limit: int = 200) -> str:
    text = " ".join(response.text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _transport_error(exc: httpx.HTTPError, retries: int) -> PlatformError:
    kind = "Timeout" if isinstance(exc, httpx.TimeoutException) else "ConnectionFailed"
    what = "did not answer in time" if kind == "Timeout" else "could not be reached"
    return PlatformError(
        None, kind, f"The platform {what} ({type(exc).__name__}) after {retries + 1} attempt(s); try again later."
    )
