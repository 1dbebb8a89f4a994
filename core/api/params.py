"""Query parameters of the API: times (RFC 3339 in, lenient as API.md allows) and paging (size and token)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Query, Request

from core.errors import InputError

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
# An offset's "+" arrives as a space when a client forgets to percent-encode it ("...T10:00:00 01:00").
_SPACE_FOR_PLUS = re.compile(r"^(.*[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def parse_time(text: str | None, name: str) -> datetime | None:
    """A time given as RFC 3339 with `Z` or an offset, or with a space for `T`; a bare time counts as UTC."""
    if text is None:
        return None
    value = text.strip()
    if match := _SPACE_FOR_PLUS.match(value):
        value = f"{match.group(1)}+{match.group(2)}"
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    if len(value) > 10 and value[10] in " t":
        value = value[:10] + "T" + value[11:]
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that pushes year 9999 or 1 out of range
        raise InputError(
            f"{name} '{text[:40]}' is not a time; use RFC 3339 like 2025-03-01T00:00:00Z.",
            errors={f"query.{name}": "expected an RFC 3339 time such as 2025-03-01T00:00:00Z"},
        ) from None


def check_range(start: datetime, end: datetime | None) -> None:
    if end is not None and end <= start:
        raise InputError(
            "end must be after start; give a later end or leave it out.",
            errors={"query.end": "must be after start"},
        )


@dataclass(frozen=True)
class Paging:
    size: int
    token: str | None


async def paging(
    page_size: int = Query(
        DEFAULT_PAGE_SIZE, alias="pageSize", ge=1, le=MAX_PAGE_SIZE, description="Items per page, 1 to 1000."
    ),
    continuation_token: str | None = Query(
        None,
        alias="continuationToken",
        min_length=1,
        max_length=2048,
        description="The meta.continuationToken of the previous page, as it was given; omitted for the first page.",
    ),
) -> Paging:
    return Paging(page_size, continuation_token)


def _query_names(dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def known_query(request: Request) -> None:
    """Refuse query parameters the route does not take, so a misspelt `pagesize` is not silently ignored."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "no query parameters"
        raise InputError(
            f"Unknown query parameter {unknown[0][:40]!r}; this call takes {takes}.",
            errors={f"query.{name[:40]}": "not a parameter of this call" for name in unknown[:10]},
        )
