"""Read-only SQL on a release: no writes, no other files, no attachments, no extensions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

LOCKED = {
    "access_mode": "READ_ONLY",
    "enable_external_access": False,  # no reading or writing files, no ATTACH, no COPY, no httpfs
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,  # the query cannot SET any of the above back
}


class QueryError(Exception):
    pass


def connect_release(path: Path):
    """Open a release's DuckDB file with the locked, read-only configuration."""
    import duckdb

    return duckdb.connect(str(path), read_only=True, config={k: v for k, v in LOCKED.items() if k != "access_mode"})


def run_query(path: Path, sql: str) -> tuple[list[str], list[tuple]]:
    import duckdb

    con = connect_release(path)
    try:
        rel = con.execute(sql)
        columns = [d[0] for d in rel.description or []]
        return columns, rel.fetchall()
    except duckdb.Error as exc:
        raise QueryError(str(exc).splitlines()[0]) from None
    finally:
        con.close()


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    return str(v)


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """A plain aligned text table (what the cookbook shows)."""
    cells = [[_text(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda vals: " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    out = [line(columns), "-+-".join("-" * w for w in widths)] + [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def print_result(columns, rows, fmt: str, stream) -> None:
    if fmt == "csv":
        w = csv.writer(stream, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[_text(v) for v in r] for r in rows])
    elif fmt == "json":
        stream.write(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, ensure_ascii=False, indent=2) + "\n")
    else:
        stream.write(format_table(columns, rows))
