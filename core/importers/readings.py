"""Canonical readings as CSV, Parquet or JSON lines (SPEC section 2), with unit variants and mapping."""

from __future__ import annotations

import io
import json
import mmap
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

from core.errors import InputError
from core.importers import ImportOptions, ParsedFile, platform, read_bytes
from core.importers.rules import RULES, UNIT_VARIANTS, check_entity_id, reject_frame, require_columns, value_checks
from core.importers.times import check_timezone, parse_times
from core.schema import ENTITIES_SCHEMA, ENTITY_TYPE_ALIASES, READINGS_SCHEMA, conform

TIME_ALIASES = ("ts", "timestamp")


def load_table(path: Path, name: str) -> tuple[pl.DataFrame, int]:
    """The file as a frame (CSV and JSON as text columns) and the line number of its first data row."""
    if path.suffix.lower() == ".xlsx":
        try:
            return pl.read_excel(path, sheet_id=1, engine="openpyxl"), 2
        except Exception as exc:  # openpyxl raises many types for damaged workbooks
            raise InputError(f"{name} is not a readable Excel workbook ({_first_line(exc)}).") from None
    if path.is_dir() or path.suffix.lower() == ".parquet":
        files = sorted(path.glob("**/*.parquet")) if path.is_dir() else [path]
        if not files:
            raise InputError(f"The folder {name} holds no .parquet files.")
        try:
            return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed"), 1
        except Exception as exc:  # polars raises several error types for damaged files
            raise InputError(f"{name} is not a readable Parquet file ({_first_line(exc)}).") from None
    data = read_bytes(path)
    if not data.strip():
        raise InputError(f"{name} is empty; choose a file with a header row and readings.")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{name} is UTF-16 text; save it as UTF-8 (CSV UTF-8 in spreadsheets) and try again.")
    if b"\x00" in data[:4096]:
        raise InputError(f"{name} looks like a binary file, not CSV or JSON; export it as CSV and try again.")
    head = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if head[:1] in (b"{", b"["):
        try:
            return _load_json(head, name), 1
        except UnicodeDecodeError:
            raise InputError(
                f"{name} is not UTF-8 text; save it as UTF-8 (CSV UTF-8 in spreadsheets) and try again."
            ) from None
    separator = sniff_separator(head[: head.find(b"\n") if b"\n" in head else 65536])
    return _csv_frame(data, separator, name), 2


def _csv_frame(data: bytes, separator: str, name: str) -> pl.DataFrame:
    """CSV text as a frame of text columns, names trimmed, decimal commas made points when `;` or tab separate."""
    try:
        frame = pl.read_csv(io.BytesIO(data), separator=separator, infer_schema=False, truncate_ragged_lines=False)
    except (UnicodeDecodeError, pl.exceptions.PolarsError) as exc:
        if isinstance(exc, UnicodeDecodeError) or "utf-8" in str(exc).lower():
            raise InputError(
                f"{name} is not UTF-8 text; save it as UTF-8 (CSV UTF-8 in spreadsheets) and try again."
            ) from None
        if "more fields" in str(exc):
            raise InputError(
                f"{name} has rows with more fields than its header; check the separator and the quoting of text "
                "that contains commas, then import it again."
            ) from None
        raise InputError(f"{name} could not be read as CSV ({_first_line(exc)}).") from None
    frame = frame.rename(lambda c: c.strip())
    if separator != ",":
        # With ';' or tab between fields a comma can only be a decimal mark (7,4 kW as spreadsheets write it).
        frame = frame.with_columns(pl.all().str.replace(r"^(\s*-?\d+),(\d+\s*)$", "$1.$2"))
    return frame


# -- large files, read in blocks ----------------------------------------------------------------------------------
STREAM_ABOVE_BYTES = 128 * 1024**2  # plain CSV files larger than this are read, validated and landed in blocks
BLOCK_BYTES = 32 * 1024**2


def streamable(path: Path, options: ImportOptions, above: int | None = None) -> bool:
    """Whether a file can be imported block by block with the same outcome as whole: a large plain UTF-8 CSV of
    canonical readings with offsets in its times (naive local times need the whole file: the repeated DST hour
    is resolved in file order) and no quotes (a quoted field may hold a line break, so lines are not rows)."""
    if options.format not in ("auto", "readings") or options.timezone is not None:
        return False
    above = STREAM_ABOVE_BYTES if above is None else above
    if not path.is_file() or path.suffix.lower() in (".xlsx", ".parquet", ".gz") or path.stat().st_size <= above:
        return False
    with path.open("rb") as fh:
        header = fh.readline(65536).lstrip(b"\xef\xbb\xbf")
        if header[:2] == b"\x1f\x8b" or header.lstrip()[:1] in (b"{", b"[") or b"\x00" in header:
            return False
        try:
            columns = [c.strip() for c in header.decode().strip().split(sniff_separator(header))]
        except UnicodeDecodeError:
            return False
        renamed = {src: dst for dst, src in options.mapping.items()}
        columns = [renamed.get(c, c) for c in columns]
        if "entity_id" not in columns or not set(TIME_ALIASES) & set(columns):
            return False
        if options.format == "auto" and not options.mapping:
            from core.importers import sessions, teslafi

            if teslafi.is_teslafi(columns) or sessions.layout_for(columns, "auto") is not None:
                return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as whole:  # no copies: 5x faster than reads
            return whole.find(b'"') < 0


TextBlock = Callable[[], pl.DataFrame] | None  # the block read again as text, when it was read typed


def csv_blocks(
    path: Path, name: str, block_bytes: int | None = None, typed: bool = False
) -> Iterator[tuple[pl.DataFrame, int, int, TextBlock]]:
    """A streamable CSV file (see streamable) as frames of whole lines, each with the file line of its first row,
    the bytes of the file read so far, and (typed) a way to read the block again as text.

    Typed, the reader itself parses the number columns (twice as fast as text then cast); a block with a value it
    does not take as a number (a null word, a decimal comma, a space after it) is read as text instead."""
    block_bytes = block_bytes or BLOCK_BYTES
    with path.open("rb") as fh:
        header = fh.readline().lstrip(b"\xef\xbb\xbf")
        separator = sniff_separator(header)
        first_line, carry = 2, b""
        while True:
            block = fh.read(block_bytes)
            data = carry + block
            cut = len(data) if not block else data.rfind(b"\n") + 1
            if block and cut == 0:  # no line break in a whole block: keep reading (the line is checked as a whole)
                carry = data
                continue
            lines, carry = data[:cut], data[cut:]
            if lines.strip():
                text = header + lines
                frame = _typed_csv_frame(text, header, separator) if typed else None
                as_text = (lambda text=text: _csv_frame(text, separator, name)) if frame is not None else None
                frame = frame if frame is not None else _csv_frame(text, separator, name)
                if frame.height:
                    yield frame, first_line, fh.tell() - len(carry), as_text
                    first_line += frame.height
            if not block:
                return


NUMBER_COLUMNS = frozenset(r.column for r in RULES if r.kind == "number") | {c for c, _ in UNIT_VARIANTS.values()}


def _typed_csv_frame(data: bytes, header: bytes, separator: str) -> pl.DataFrame | None:
    """The CSV with its number columns parsed by the reader; None when a value needs the text path."""
    if separator != ",":  # decimal commas are possible: text first
        return None
    names = header.decode().rstrip("\r\n").split(separator)
    numbers = {raw: pl.Float64 for raw in names if raw.strip() in NUMBER_COLUMNS}
    if not numbers:
        return None
    try:
        frame = pl.read_csv(io.BytesIO(data), separator=separator, infer_schema=False, schema_overrides=numbers)
    except (UnicodeDecodeError, pl.exceptions.PolarsError):  # the text path says what is wrong, row by row
        return None
    return frame.rename(lambda c: c.strip())


def parse_block(path: Path, name: str, options: ImportOptions, table: pl.DataFrame, first_line: int,
                as_text: TextBlock = None) -> ParsedFile:  # fmt: skip
    """One block of csv_blocks; read again as text when a number is rejected, so the reject shows it as written."""
    parsed = parse(path, name, options, table, first_line)
    if as_text is not None and parsed.rejects.get_column("column").is_in(list(NUMBER_COLUMNS)).any():
        return parse(path, name, options, as_text(), first_line)
    return parsed


def sniff_separator(header: bytes) -> str:
    """The field separator of a CSV header line: the most frequent of , ; tab and |."""
    counts = {sep: header.count(sep.encode()) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def _load_json(data: bytes, name: str) -> pl.DataFrame:
    try:
        if data[:1] == b"[" or (data[:1] == b"{" and b"\n{" not in data[:1_000_000].strip()):
            doc = json.loads(data)
            records = doc.get("data", doc) if isinstance(doc, dict) else doc
            if isinstance(records, dict):
                records = [records]
        else:
            records = [json.loads(line) for line in data.splitlines() if line.strip()]
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{name} is not valid JSON ({_first_line(exc)}).") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{name} holds JSON that is not a list of reading objects.")
    if records and all(platform.is_api_reading(r) for r in records):
        return pl.DataFrame([platform.flatten(r) for r in records], infer_schema_length=None)
    return pl.DataFrame(
        [{k: (None if v is None else str(v)) for k, v in r.items()} for r in records], infer_schema_length=None
    )


def parse(path: Path, name: str, options: ImportOptions, table: pl.DataFrame | None = None,
          first_line: int = 2) -> ParsedFile:  # fmt: skip
    check_timezone(options.timezone)
    if table is None:
        table, first_line = load_table(path, name)
    if table.height == 0:
        raise InputError(f"{name} has a header but no rows; nothing to import.")
    columns = table.columns
    if options.mapping:
        unknown = {src for src in options.mapping.values() if src not in columns}
        if unknown:
            raise InputError(f"The mapping names columns that {name} does not have: {', '.join(sorted(unknown))}.")
        table = table.rename({src: dst for dst, src in options.mapping.items() if src != dst})
        columns = table.columns
    time_col = next((c for c in TIME_ALIASES if c in columns), None)
    if time_col is None or "entity_id" not in columns:
        require_columns(columns, ["entity_id", "ts (or timestamp)"], "file")
    table = table.with_row_index("__row", offset=first_line).with_columns(pl.col("__row").cast(pl.Int64))
    source = {}
    for rule in RULES:
        if rule.column in columns:
            source[rule.column] = (rule.column, 1.0)
        elif rule.column in UNIT_VARIANTS and UNIT_VARIANTS[rule.column][0] in columns:
            source[rule.column] = UNIT_VARIANTS[rule.column]
    if not source:
        raise InputError(
            f"{name} has no reading values; expected some of {', '.join(r.column for r in RULES)} "
            "(or power_w, energy_wh, range_mi, odometer_mi)."
        )
    values, problems = value_checks(table, source)
    hint = "--timezone (or the time-zone picker on the Import page)"
    times = parse_times(table, time_col, options.timezone, "entity_id", hint, options.not_after)
    entity = table.select("__row", pl.col("entity_id").cast(pl.String))
    problems.append(
        entity.filter(~check_entity_id(pl.col("entity_id"))).select(
            pl.col("__row").alias("row"),
            pl.lit("entity_id").alias("column"),
            pl.col("entity_id").alias("value"),
            pl.lit("entity id must be 1 to 128 printable characters").alias("reason"),
        )
    )
    problems.append(
        times.frame.filter(pl.col("__ts_reason").is_not_null()).select(
            pl.col("__row").alias("row"),
            pl.lit(time_col).alias("column"),
            pl.col("__raw").cast(pl.String).alias("value"),
            pl.col("__ts_reason").alias("reason"),
        )
    )
    entity_types = _entity_types(table, options)
    problems.append(
        entity_types.filter(pl.col("__type_reason").is_not_null()).select(
            pl.col("__row").alias("row"),
            pl.lit("entity_type").alias("column"),
            pl.col("__type_raw").alias("value"),
            pl.col("__type_reason").alias("reason"),
        )
    )
    rejects = (
        pl.concat([p.cast({"row": pl.Int64}) for p in problems])
        .with_columns(file=pl.lit(name))
        .select(reject_frame().columns)
        .sort("row", "column")
    )
    bad_rows = rejects.select("row").unique().rename({"row": "__row"})
    good = (
        entity.join(times.frame.select("__row", "ts"), on="__row")
        .join(values, on="__row")
        .join(entity_types.select("__row", "entity_type"), on="__row")
        .join(bad_rows, on="__row", how="anti")
        .sort("__row")
    )
    readings = conform(good, READINGS_SCHEMA)
    entities = _entities(good, table)
    return ParsedFile(
        name=name,
        format="readings",
        rows_read=table.height,
        readings=readings,
        entities=entities,
        rejects=rejects,
        ambiguous=times.ambiguous,
        nonexistent=times.nonexistent,
    )


def _entity_types(table: pl.DataFrame, options: ImportOptions) -> pl.DataFrame:
    default = options.entity_type or "EV"
    raw = pl.col("entity_type").cast(pl.String).str.strip_chars() if "entity_type" in table.columns else pl.lit(None)
    raw = pl.when(raw == "").then(None).otherwise(raw).fill_null(pl.lit(default))
    known = pl.DataFrame({"__type_raw": list(ENTITY_TYPE_ALIASES), "__canonical": list(ENTITY_TYPE_ALIASES.values())})
    frame = table.select("__row", raw.alias("__type_raw")).join(known, on="__type_raw", how="left")
    platform_type = pl.col("__type_raw").str.contains(r"^[A-Za-z][A-Za-z0-9]{0,39}$")
    return frame.with_columns(
        entity_type=pl.coalesce("__canonical", pl.when(platform_type).then("__type_raw")),
        __type_reason=pl.when(pl.col("__canonical").is_null() & ~platform_type)
        .then(pl.lit("entity type must be EV, ChargePoint (CP, ChargePole) or another platform type name"))
        .otherwise(None),
    )


def _entities(good: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    extra = [c for c in ("name", "brand", "identifier") if c in table.columns]
    frame = good.select("__row", "entity_id", "entity_type")
    if extra:
        frame = frame.join(table.select("__row", *extra), on="__row")
    first = frame.sort("__row").group_by("entity_id", maintain_order=True).first()
    return conform(first, ENTITIES_SCHEMA)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
