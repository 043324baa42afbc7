"""Row rules: checks within one row that Table Schema cannot express.

Each rule is declared once here. The fast engine compiles `sql` (TRUE = violation, over the typed
columns) into DuckDB; the reference engine (pipelines/reference.py) runs `frame` through pandera.
The differential tests hold the two to the same findings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RowRule:
    code: str
    table: str
    column: str  # the column a finding points at
    sql: str  # violation predicate; :as_of is the as-of DATE
    frame: Callable  # (DataFrame of typed values, as_of: date) -> boolean Series of violations
    message: str  # str.format over the row's values and as_of (the as-of date, YYYY-MM-DD)


def _present(df, *cols):
    mask = None
    for c in cols:
        m = df[c].notna()
        mask = m if mask is None else mask & m
    return mask


def _date(df, col):
    import pandas as pd

    return pd.to_datetime(df[col], errors="coerce").dt.date


ROW_RULES: tuple[RowRule, ...] = (
    RowRule(
        "params-active-exceeds-total",
        "models",
        "params_active",
        "params_active > params_total",
        lambda df, as_of: _present(df, "params_active", "params_total") & (df["params_active"] > df["params_total"]),
        "params_active {params_active} exceeds params_total {params_total}",
    ),
    RowRule(
        "future-date",
        "models",
        "release_date",
        "release_date > strftime(:as_of, '%Y-%m-%d')",
        lambda df, as_of: _present(df, "release_date") & (df["release_date"] > as_of.isoformat()),
        "release_date {release_date} lies after the as-of date {as_of}",
    ),
    RowRule(
        "future-date",
        "sources",
        "published",
        "published > :as_of",
        lambda df, as_of: _present(df, "published") & (_date(df, "published") > as_of),
        "published {published} lies after the as-of date {as_of}",
    ),
    RowRule(
        "future-date",
        "sources",
        "accessed",
        "accessed > :as_of",
        lambda df, as_of: _present(df, "accessed") & (_date(df, "accessed") > as_of),
        "accessed {accessed} lies after the as-of date {as_of}",
    ),
    RowRule(
        "published-after-accessed",
        "sources",
        "published",
        "published > accessed",
        lambda df, as_of: _present(df, "published", "accessed") & (_date(df, "published") > _date(df, "accessed")),
        "published {published} is later than accessed {accessed}",
    ),
    RowRule(
        "url-required",
        "sources",
        "url",
        "url IS NULL AND kind IS DISTINCT FROM 'seed'",
        lambda df, as_of: df["url"].isna() & (df["kind"] != "seed"),
        "the source has no url",
    ),
    RowRule(
        "future-date",
        "reviews",
        "reviewed_on",
        "reviewed_on > :as_of",
        lambda df, as_of: _present(df, "reviewed_on") & (_date(df, "reviewed_on") > as_of),
        "reviewed_on {reviewed_on} lies after the as-of date {as_of}",
    ),
    RowRule(
        "seed-correction-incomplete",
        "reviews",
        "seed_source_id",
        "seed_source_id IS NOT NULL AND (seed_value IS NULL OR (verdict = 'corrected' AND field IS NULL))",
        lambda df, as_of: df["seed_source_id"].notna() & (df["seed_value"].isna() | ((df["verdict"] == "corrected") & df["field"].isna())),
        "review checks a claim of {seed_source_id} but lacks seed_value, or is a correction without the corrected field",
    ),
    RowRule(
        "params-range",
        "classes",
        "params_min",
        "params_min > params_max",
        lambda df, as_of: _present(df, "params_min", "params_max") & (df["params_min"] > df["params_max"]),
        "params_min {params_min} exceeds params_max {params_max}",
    ),
    RowRule(
        "closed-licence",
        "models",
        "license",
        "lower(trim(license)) IN ('proprietary', 'closed', 'none', 'n/a')",
        lambda df, as_of: df["license"].fillna("").str.strip().str.lower().isin(["proprietary", "closed", "none", "n/a"]),
        'license "{license}" names no licence; a closed model\'s weights are not licensed',
    ),
)
