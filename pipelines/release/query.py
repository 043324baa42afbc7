"""Read-only SQL on a release: no writes, no other files, no attachments, no extensions."""

from __future__ import annotations

import csv
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from pipelines.package import chars

# defaults for `model-atlas query` (each has an option): DuckDB's memory, wall time, rows printed
QUERY_MEMORY_LIMIT = "1GB"
QUERY_TIMEOUT_SECONDS = 30.0
QUERY_MAX_ROWS = 1000
QUERY_THREADS = 2


class QueryError(Exception):
    pass


def connect_release(path: Path, memory_limit: str = QUERY_MEMORY_LIMIT):
    """Open a release's DuckDB file read-only on a locked connection (no files, no extensions, capped memory,
    spills in a private temporary directory outside the release)."""
    from pipelines.package.duck import open_duckdb

    return open_duckdb(path, read_only=True, memory_limit=memory_limit, threads=QUERY_THREADS)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool  # more rows than max_rows: only the first max_rows are in rows


def run_query(
    path: Path, sql: str, memory_limit: str = QUERY_MEMORY_LIMIT, timeout: float = QUERY_TIMEOUT_SECONDS, max_rows: int | None = QUERY_MAX_ROWS
) -> QueryResult:
    """Run one read-only query under a memory cap and a wall-time limit (a timer thread interrupts the
    connection); fetch at most max_rows + 1 rows so a huge result is never held in memory."""
    import duckdb

    con = connect_release(path, memory_limit)
    timed_out = threading.Event()

    def interrupt():
        timed_out.set()
        con.interrupt()

    timer = threading.Timer(timeout, interrupt) if timeout else None
    try:
        if timer:
            timer.start()
        rel = con.execute(sql)
        columns = [d[0] for d in rel.description or []]
        rows = rel.fetchmany(max_rows + 1) if max_rows is not None else rel.fetchall()
        truncated = max_rows is not None and len(rows) > max_rows
        return QueryResult(columns, rows[:max_rows] if truncated else rows, truncated)
    except duckdb.OutOfMemoryException:
        raise QueryError(
            f"the query needs more memory than --memory-limit {memory_limit} allows; narrow it (filter, aggregate, LIMIT) or raise the limit"
        ) from None
    except (duckdb.InterruptException, RuntimeError, duckdb.Error) as exc:
        if timed_out.is_set():
            raise QueryError(f"the query ran longer than --timeout {timeout:g} seconds and was stopped; narrow it or raise the limit") from None
        if isinstance(exc, duckdb.Error):
            raise QueryError(str(exc).splitlines()[0]) from None
        raise
    finally:
        if timer:
            timer.cancel()
        con.close()


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    return str(v)


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """A plain aligned text table (what the cookbook shows); CR, LF, tab, backslash and every character
    the character policy refuses are escaped, so no value can move the cursor or hide itself."""
    cells = [[chars.for_terminal(_text(v)) for v in r] for r in rows]
    columns = [chars.for_terminal(c) for c in columns]
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
        text = json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, ensure_ascii=False, indent=2)
        stream.write(chars.for_json(text) + "\n")  # refused characters as \u escapes: the same JSON values
    else:
        stream.write(format_table(columns, rows))
