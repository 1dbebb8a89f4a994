"""The bad-input corpus: every file gets stored rows plus rejects with reasons, or one clear error and an
untouched database; never a traceback (CLI in process; the UI path is in test_pages and the browser tests)."""

from __future__ import annotations

import pytest

from core.cli import main
from core.store import Store
from tests.conftest import FIXTURES

BAD = FIXTURES / "bad"

# file -> ("error", words of the one-line message) or ("ok", stored, rejected, words of the first reject reason)
CASES = {
    "empty.csv": ("error", "is empty"),
    "whitespace_only.csv": ("error", "is empty"),
    "header_only.csv": ("error", "has a header but no rows"),
    "binary.bin": ("error", "looks like a binary file"),
    "latin1.csv": ("error", "is not UTF-8 text"),
    "utf16.csv": ("error", "is UTF-16 text"),
    "truncated.csv.gz": ("error", "is not a complete gzip file"),
    "bomb.csv.gz": ("error", "compression bomb"),
    "unknown_columns.csv": ("error", "not recognised from its columns (vehicle, time, kw)"),
    "ragged_rows.csv": ("error", "more fields than its header"),
    "naive_times.csv": ("error", "choose the zone they were recorded in with --timezone"),
    "invalid.json": ("error", "is not valid JSON"),
    "json_not_a_list.json": ("error", "has a header but no rows"),
    "json_list_of_numbers.json": ("error", "not a list of reading objects"),
    "corrupt.parquet": ("error", "is not a readable Parquet file"),
    "corrupt.xlsx": ("error", "is not a readable Excel workbook"),
    "only_bad_rows.csv": ("error", "has no usable row (row 2: not a time"),
    "mixed_formats.csv": ("ok", 1, 1, "not a time"),
    "duplicated_header.csv": ("ok", 2, 1, "not a number"),
    "crlf.csv": ("ok", 2, 0, None),
    "bom.csv": ("ok", 1, 0, None),
    "semicolon.csv": ("ok", 1, 0, None),
    "decimal_comma.csv": ("ok", 1, 0, None),
    "html_and_markdown.csv": ("ok", 1, 0, None),
    "future.csv": ("ok", 1, 1, "time is in the future"),
    "year_1900.csv": ("ok", 1, 1, "outside 1970-01-02 .. 2100-01-01"),
    "soc_out_of_range.csv": ("ok", 1, 1, "state of charge must be between 0 and 100 %"),
    "latitude_out_of_range.csv": ("ok", 1, 1, "latitude must be between -90 and 90"),
    "longitude_out_of_range.csv": ("ok", 1, 1, "longitude must be between -180 and 180"),
    "not_a_number.csv": ("ok", 1, 1, "not a number"),
    "bad_boolean.csv": ("ok", 1, 1, "is_charging must be true/false"),
    "entity_id_too_long.csv": ("ok", 1, 1, "entity id must be 1 to 128 printable characters"),
    "entity_id_control_char.csv": ("ok", 1, 1, "entity id must be 1 to 128 printable characters"),
    "missing_time.csv": ("ok", 1, 1, "time is missing"),
    "unparseable_time.csv": ("ok", 1, 1, "not a time"),
    "bad_entity_type.csv": ("ok", 1, 1, "entity type must be EV, ChargePoint"),
    "negative_meter.csv": ("ok", 1, 1, "the energy meter must be zero or positive"),
    "sessions_end_before_start.csv": ("ok", 1, 1, "the session ends before it starts"),
}


def test_the_corpus_is_complete():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CASES)
    assert len(CASES) >= 30


def counts(db) -> tuple:
    store = Store.open(db)
    return tuple(store.scalar(f"SELECT count(*) FROM {t}") for t in ("entities", "readings", "sessions", "imports"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file(name, db_path, capsys, tmp_path):
    rejects = tmp_path / "rejects.csv"
    before = counts(db_path)
    code = main(["--db", str(db_path), "ingest", str(BAD / name), "--rejects", str(rejects)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    expected = CASES[name]
    if expected[0] == "error":
        assert code == 2
        assert expected[1] in err and len(err.strip().splitlines()) == 1
        assert counts(db_path) == before  # nothing written
    else:
        _, stored, rejected, reason = expected
        assert code == 0, err
        assert f"stored {stored}," in out and f"rejected {rejected}" in out
        lines = rejects.read_text().splitlines()
        assert lines[0] == "file,row,column,value,reason" and len(lines) >= rejected + 1
        if reason:
            assert reason in "\n".join(lines[1:])
    Store.close_all()


def test_nonexistent_local_time_is_rejected_and_counted(db_path, capsys):
    code = main(["--db", str(db_path), "ingest", str(FIXTURES / "bad" / "naive_times.csv"), "--timezone", "Nowhere"])
    assert code == 2 and "not a known time zone" in capsys.readouterr().err
    path = FIXTURES / "readings" / "naive_dst_brussels.csv"
    assert main(["--db", str(db_path), "ingest", str(path), "--timezone", "Europe/Brussels"]) == 0
    assert capsys.readouterr().out == (
        "naive_dst_brussels.csv: read 8, stored 7, duplicate 0, conflict 0, rejected 1; "
        "local times: ambiguous 4, nonexistent 1\n"
    )
    Store.close_all()


def test_ten_megabyte_single_line(db_path, capsys, tmp_path):
    path = tmp_path / "one_line.csv"
    path.write_text("x" * (10 * 1024 * 1024))
    assert main(["--db", str(db_path), "ingest", str(path)]) == 2
    err = capsys.readouterr().err
    assert "has a header but no rows" in err and len(err) < 400
    Store.close_all()


def test_unknown_format_option(db_path, capsys):
    assert main(["--db", str(db_path), "ingest", str(BAD / "bom.csv"), "--format", "xml"]) == 2
    assert "Unknown format 'xml'" in capsys.readouterr().err
    Store.close_all()
