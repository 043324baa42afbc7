"""stale: rows whose latest review is past the policy, oldest first, with reviewer and date."""

from __future__ import annotations

from datetime import date

from pipelines.checks.engine import register_tables, stale_rows_sql
from pipelines.package.chars import for_markdown
from pipelines.package.descriptor import Package
from pipelines.package.tables import connect_package, read_tables


def stale_rows(pkg: Package, as_of: date, include_due: bool = True) -> list[tuple]:
    """(table, row_id, confidence, last_reviewed, reviewer, age_days, status), oldest first."""
    con = connect_package(pkg)
    loaded, _ = read_tables(pkg, con)
    register_tables(con, loaded)
    sql = stale_rows_sql(pkg, as_of)
    if not sql:
        return []
    statuses = "('stale', 'due')" if include_due else "('stale')"
    return con.execute(
        f"SELECT table_name, row_id, confidence, last_reviewed, reviewer, age_days, status FROM ({sql}) "
        f"WHERE status IN {statuses} ORDER BY last_reviewed, table_name, row_id"
    ).fetchall()


def stale_report(pkg: Package, as_of: date, fmt: str, include_due: bool = True) -> str:
    rows = stale_rows(pkg, as_of, include_due)
    head = ["table", "row", "confidence", "last reviewed", "reviewer", "age (days)", "status"]
    if fmt == "markdown":
        out = [f"### Rows due for review at {as_of.isoformat()}", ""]
        if not rows:
            return "\n".join(out + ["None: every row is within its review policy.", ""]) + "\n"
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        cell = for_markdown
        out += [f"| {cell(t)} | `{cell(r)}` | {cell(c)} | {d} | {cell(who)} | {age} | {s} |" for t, r, c, d, who, age, s in rows]
        return "\n".join(out) + "\n"
    from pipelines.release.query import format_table

    if not rows:
        return f"no rows past their review policy at {as_of.isoformat()}\n"
    return format_table(head, rows)
