"""Export files that depend only on the sessions, not on when they were written."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime

import polars as pl

from core.exports import render


def core_properties(xlsx: bytes) -> str:
    return zipfile.ZipFile(io.BytesIO(xlsx)).read("docProps/core.xml").decode()


def test_a_workbook_is_stamped_with_its_newest_session_end_not_the_clock():
    frame = pl.DataFrame(
        {
            "entity_id": ["=cmd", "ev-ü"],
            "end_utc": [datetime(2025, 3, 1, 10, 30), datetime(2025, 3, 2, 7, 5, 9)],
        }
    )
    workbook = render(frame, "xlsx")
    assert '<dcterms:created xsi:type="dcterms:W3CDTF">2025-03-02T07:05:09Z</dcterms:created>' in core_properties(
        workbook
    )
    assert pl.read_excel(workbook, engine="openpyxl").get_column("entity_id").to_list() == ["'=cmd", "ev-ü"]


def test_a_workbook_without_sessions_has_a_fixed_stamp():
    empty = pl.DataFrame(schema={"entity_id": pl.String, "end_utc": pl.Datetime("us")})
    assert "2000-01-01T00:00:00Z" in core_properties(render(empty, "xlsx"))


def test_csv_keeps_utf8_names_and_neutralises_every_formula_start():
    frame = pl.DataFrame({"entity_id": ["ev-ü Zürich", "=cmd", "+1", "-1", "@x", "ok=1"], "energy_kwh": [1.0] * 6})
    text = render(frame, "csv").decode("utf-8")  # bytes that are not UTF-8 fail here
    rows = list(csv.reader(io.StringIO(text)))
    assert [r[0] for r in rows[1:]] == ["ev-ü Zürich", "'=cmd", "'+1", "'-1", "'@x", "ok=1"]
