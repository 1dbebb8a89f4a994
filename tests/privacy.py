"""Privacy probe: every way a test fleet's vehicle positions could be written, and a search for them in bytes."""

from __future__ import annotations

import io
import math
import re
import zipfile

import polars as pl

# Drawing geometry of charts (SVG coordinates in pixels) is not data; a y="4.1999" is where a tick label sits.
_GEOMETRY = re.compile(rb'\s(?:x|y|dx|dy|cx|cy|r|x1|x2|y1|y2|d|width|height|transform|points|viewBox)="[^"]*"')
_NUMBER = re.compile(rb"(?<![\d.])-?\d+\.\d{4,}")


def _variants(value: float) -> set[str]:
    out = set()
    for decimals in (4, 5, 6):
        scale = 10**decimals
        out.add(f"{value:.{decimals}f}")
        out.add(f"{math.trunc(value * scale) / scale:.{decimals}f}")
    return out


def forbidden_strings(secret: pl.DataFrame, public: pl.DataFrame) -> set[str]:
    """Strings of secret positions (4, 5, 6 decimals, rounded and truncated) that public places do not share."""

    def strings(frame: pl.DataFrame) -> set[str]:
        values = pl.concat([frame.get_column("latitude"), frame.get_column("longitude")]).drop_nulls().unique()
        return {s for v in values.to_list() for s in _variants(v)}

    return strings(secret) - strings(public)


def demo_secrets(store) -> set[str]:
    """Forbidden strings of a demo store: vehicles' reading and session positions, less the public places."""
    vehicles = "SELECT entity_id FROM entities WHERE entity_type = 'EV'"
    secret = pl.concat(
        [
            store.frame(f"SELECT latitude, longitude FROM readings WHERE entity_id IN ({vehicles})"),
            store.frame(f"SELECT latitude, longitude FROM sessions WHERE entity_id IN ({vehicles})"),
        ]
    )
    public = pl.concat(
        [
            store.frame("SELECT latitude, longitude FROM locations"),
            store.frame("SELECT latitude, longitude FROM entities WHERE latitude IS NOT NULL"),
        ]
    )
    return forbidden_strings(secret, public)


def leaks(data: bytes, forbidden: set[str]) -> list[str]:
    """The forbidden strings found inside any decimal number of `data` (xlsx is unzipped, Parquet read)."""
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            data = b"".join(archive.read(name) for name in archive.namelist())
    elif data[:4] == b"PAR1":
        data = pl.read_parquet(io.BytesIO(data)).write_csv().encode()
    data = _GEOMETRY.sub(b"", data)
    found = []
    for token in _NUMBER.findall(data):  # a whole number, so 45694.2395 (an Excel date) is not 4.2395
        text = token.decode()
        found += [text[:end] for end in range(6, len(text) + 1) if text[:end] in forbidden]
    return found
