"""SQL building blocks shared by the loader, the checks and the release: quoting, literals, and the
Table Schema type casts with frictionless semantics."""

from __future__ import annotations

from datetime import date

from pipelines.package.descriptor import Field, Table

TRUE_VALUES = ("true", "True", "TRUE", "1")
FALSE_VALUES = ("false", "False", "FALSE", "0")
INTEGER_RE = r"\s*[+-]?[0-9]+\s*"
DATE_RE = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
TYPED_PREFIX = "__typed_"  # the stored typed value of a non-string field sits beside its raw string


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value) -> str:
    """An SQL literal for a str, int, bool or date taken from the schema or policy."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def cast_sql(field: Field, col: str) -> tuple[str, str]:
    """(is-valid expression, typed expression) for a raw VARCHAR column, with frictionless semantics.

    The typed expression is NULL wherever the cell is empty or invalid. Valid means exactly what a
    release can store: an integer within the 64-bit (BIGINT) range, a finite number, a real calendar
    date from 0001-01-01 to 9999-12-31.
    """
    if field.type == "integer":
        ok = f"(regexp_full_match({col}, {lit(INTEGER_RE)}) AND TRY_CAST(trim({col}) AS BIGINT) IS NOT NULL)"
        # a cell that is the canonical text of its BIGINT value is valid without the regex (the usual case)
        return ok, (
            f"CASE WHEN CAST(TRY_CAST({col} AS BIGINT) AS VARCHAR) = {col} THEN TRY_CAST({col} AS BIGINT) "
            f"WHEN regexp_full_match({col}, {lit(INTEGER_RE)}) THEN TRY_CAST(trim({col}) AS BIGINT) END"
        )
    if field.type == "number":
        return f"(isfinite(TRY_CAST({col} AS DOUBLE)) IS TRUE)", f"CASE WHEN isfinite(TRY_CAST({col} AS DOUBLE)) THEN TRY_CAST({col} AS DOUBLE) END"
    if field.type == "boolean":
        trues = ", ".join(lit(v) for v in TRUE_VALUES)
        falses = ", ".join(lit(v) for v in FALSE_VALUES)
        return f"({col} IN ({trues}, {falses}))", f"CASE WHEN {col} IN ({trues}) THEN TRUE WHEN {col} IN ({falses}) THEN FALSE END"
    if field.type == "date":
        shaped = f"regexp_full_match({col}, {lit(DATE_RE)}) AND NOT starts_with({col}, '0000')"  # year 0000 would be 1 BC
        ok = f"({shaped} AND TRY_STRPTIME({col}, '%Y-%m-%d') IS NOT NULL)"
        return ok, f"CASE WHEN {shaped} THEN CAST(TRY_STRPTIME({col}, '%Y-%m-%d') AS DATE) END"
    return "TRUE", col


def partial_date_sql(col: str) -> str:
    """Valid-date test for a text field declared "x-date-precision" (YYYY-MM-DD, or YYYY-MM where month
    precision is declared): the date it stands for (the first of the month) must exist, years 0001-9999."""
    padded = f"CASE WHEN length({col}) = 7 THEN {col} || '-01' ELSE {col} END"
    return f"(regexp_full_match({col}, '[0-9]{{4}}-[0-9]{{2}}(-[0-9]{{2}})?') AND NOT starts_with({col}, '0000') AND TRY_STRPTIME({padded}, '%Y-%m-%d') IS NOT NULL)"


def needs_cast(field: Field) -> bool:
    return field.type not in ("string", "list")


def typed_ref(field: Field) -> str:
    """The column holding a field's typed value in a loaded table (the raw string itself for text)."""
    return q(TYPED_PREFIX + field.name) if needs_cast(field) else q(field.name)


def typed_columns(table: Table) -> list[tuple[str, str]]:
    """(stored column, expression over the raw columns) for each field whose type needs a cast."""
    return [(TYPED_PREFIX + f.name, cast_sql(f, q(f.name))[1]) for f in table.fields if needs_cast(f)]
