"""Validation as a table of rules: each value column, how to parse it, its valid range and the reason when not."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from core.errors import InputError

NULL_TOKENS = ["", "none", "null", "nan", "na", "n/a"]
TRUE_TOKENS = ["true", "1", "yes", "y", "t"]
FALSE_TOKENS = ["false", "0", "no", "n", "f"]
MILE_KM = 1.609344
REJECT_COLUMNS = {"file": pl.String, "row": pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String}


@dataclass(frozen=True)
class Rule:
    column: str  # canonical column it fills
    kind: str  # "number" | "bool"
    low: float | None = None
    high: float | None = None
    reason: str = ""


RULES: tuple[Rule, ...] = (
    Rule("power_kw", "number", -100_000, 100_000, "power must be between -100 MW and 100 MW"),
    Rule("energy_kwh", "number", 0, 1e12, "the energy meter must be zero or positive"),
    Rule("energy_added_kwh", "number", 0, 1e6, "energy added must be zero or positive"),
    Rule("soc_pct", "number", 0, 100, "state of charge must be between 0 and 100 %"),
    Rule("range_km", "number", 0, 10_000, "range must be between 0 and 10 000 km"),
    Rule("odometer_km", "number", 0, 1e8, "the odometer must be zero or positive"),
    Rule("latitude", "number", -90, 90, "latitude must be between -90 and 90"),
    Rule("longitude", "number", -180, 180, "longitude must be between -180 and 180"),
    Rule("is_charging", "bool", reason="is_charging must be true/false, 1/0 or yes/no"),
    Rule("is_plugged_in", "bool", reason="is_plugged_in must be true/false, 1/0 or yes/no"),
)
RULES_BY_COLUMN = {r.column: r for r in RULES}

# Source columns in other units: canonical column -> (source column, factor). Converted values are rounded
# to 9 decimals so that 1000617 Wh is 1000.617 kWh, not 1000.6170000000001 (float noise of the factor).
UNIT_VARIANTS = {
    "power_kw": ("power_w", 0.001),
    "energy_kwh": ("energy_wh", 0.001),
    "range_km": ("range_mi", MILE_KM),
    "odometer_km": ("odometer_mi", MILE_KM),
}


def is_null_text(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | expr.cast(pl.String).str.strip_chars().str.to_lowercase().is_in(NULL_TOKENS)


def parse_number(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Numbers from numbers or text; text that is no number (including the null tokens) becomes null."""
    if dtype.is_numeric():
        return expr.cast(pl.Float64).fill_nan(None)
    return expr.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).fill_nan(None)


def parse_bool(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Boolean:
        return expr
    text = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(text.is_in(TRUE_TOKENS)).then(True).when(text.is_in(FALSE_TOKENS)).then(False).otherwise(None)


def check_entity_id(expr: pl.Expr) -> pl.Expr:
    """True where an entity id is 1..128 printable characters."""
    return expr.is_not_null() & expr.str.len_chars().is_between(1, 128) & ~expr.str.contains(r"[\x00-\x1f\x7f]")


def reject_frame(rows: list[dict] | None = None) -> pl.DataFrame:
    return pl.DataFrame(rows or [], schema=REJECT_COLUMNS)


def value_checks(df: pl.DataFrame, source: dict[str, tuple[str, float]]) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Parse every mapped value column; return the parsed columns and one rejects frame per failing rule.

    `source` maps a canonical column to (source column in df, unit factor). `df` must hold `__row`.
    One pass parses every column; the checks then look only at the few rows that failed to parse.
    """
    exprs = []
    for canonical, (column, factor) in source.items():
        rule = RULES_BY_COLUMN[canonical]
        raw = pl.col(column)
        if rule.kind == "number":
            value = parse_number(raw, df.schema[column])
            value = value if factor == 1.0 else (value * factor).round(9)
        else:
            value = parse_bool(raw, df.schema[column])
        exprs.append(value.alias(canonical))
    parsed = df.select("__row", *exprs)
    # One pass tells which checks fail at all (a clean file's usual case); only those look at their rows.
    checks = {}
    for canonical, (column, _) in source.items():
        rule = RULES_BY_COLUMN[canonical]
        value = parsed.get_column(canonical)
        checks[f"unreadable:{canonical}"] = (pl.lit(value).is_null() & pl.col(column).is_not_null()).any()
        if rule.kind == "number":
            checks[f"range:{canonical}"] = (~pl.lit(value).is_between(rule.low, rule.high)).any()
    failing = {name for name, hit in df.select(**checks).row(0, named=True).items() if hit}
    problems = []
    for canonical, (column, factor) in source.items():
        rule = RULES_BY_COLUMN[canonical]
        if not {f"unreadable:{canonical}", f"range:{canonical}"} & failing:
            continue
        both = parsed.select("__row", pl.col(canonical).alias("__value")).with_columns(
            df.get_column(column).alias("__raw")
        )
        if rule.kind == "number" and f"unreadable:{canonical}" in failing:
            grouped = _grouped_numbers(both, factor)
            if grouped.height:
                parsed = parsed.update(grouped.rename({"__value": canonical}), on="__row")
                both = both.update(grouped, on="__row")
        unreadable = both.filter(pl.col("__value").is_null() & pl.col("__raw").is_not_null())
        unreadable = unreadable.filter(~is_null_text(pl.col("__raw")))
        problems.append(_problems(unreadable, column, "not a number" if rule.kind == "number" else rule.reason))
        if rule.kind == "number":
            out_of_range = both.filter(~pl.col("__value").is_between(rule.low, rule.high))
            problems.append(_problems(out_of_range, column, rule.reason))
    return parsed, problems


# Digits grouped by single underscores (1_000, 2_5.2_5, 1e0_1): numbers in DuckDB's grammar, as in Python's.
_GROUPED = r"^[+-]?(\d+(_\d+)*)?(\.(\d+(_\d+)*)?)?([eE][+-]?\d+(_\d+)*)?$"


def _grouped_numbers(both: pl.DataFrame, factor: float) -> pl.DataFrame:
    """__row and __value of the text values that only digit-grouping underscores kept from being numbers."""
    text = pl.col("__raw").cast(pl.String).str.strip_chars()
    rows = both.filter(pl.col("__value").is_null() & text.str.contains("_", literal=True) & text.str.contains(_GROUPED))
    value = text.str.replace_all("_", "", literal=True).cast(pl.Float64, strict=False)
    value = value if factor == 1.0 else (value * factor).round(9)
    return rows.select("__row", value.alias("__value")).filter(pl.col("__value").is_not_null())


def _problems(rows: pl.DataFrame, column: str, reason: str) -> pl.DataFrame:
    return rows.select(
        pl.col("__row").alias("row"),
        pl.lit(column).alias("column"),
        pl.col("__raw").cast(pl.String).alias("value"),
        pl.lit(reason).alias("reason"),
    )


def column_names(columns: list[str], limit: int = 12) -> str:
    """Column names for a message: each cut to 40 characters, at most `limit` of them."""
    names = [c if len(c) <= 40 else c[:37] + "..." for c in columns[:limit]]
    return ", ".join(names) + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def require_columns(columns: list[str], needed: list[str], what: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise InputError(
            f"This {what} has no column {', '.join(missing)}; found {column_names(columns) or 'no columns'}. "
            "Rename the columns or choose the format and column mapping explicitly."
        )
