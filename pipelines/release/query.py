"""Read-only SQL on a release: no writes, no other files, no attachments, no extensions."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from pipelines.package import chars

# defaults for `model-atlas query` (each has an option): DuckDB's memory, wall time, rows printed
QUERY_MEMORY_LIMIT = "1GB"
QUERY_TIMEOUT_SECONDS = 30.0
QUERY_MAX_ROWS = 1000
QUERY_THREADS = 2
# Some allocations (one huge string from repeat(), say) escape DuckDB's memory_limit, and a running
# function may not notice an interrupt: the `query` command therefore also caps the process's address
# space at the memory limit plus this headroom, and ends the process if the query outlives its time
# limit by QUERY_GRACE_SECONDS.
ADDRESS_SPACE_HEADROOM = 1536 * 1024 * 1024
QUERY_GRACE_SECONDS = 5.0
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def memory_bytes(text: str) -> int:
    """Bytes in a DuckDB memory size such as 1GB or 512MiB (DuckDB's units: KB = 1000, KiB = 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a memory size")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def cap_address_space(memory_limit: str) -> None:
    """Cap this process's address space (RLIMIT_AS) at the memory limit plus headroom: an allocation
    DuckDB does not count fails with an out-of-memory error instead of exhausting the machine."""
    import resource

    cap = memory_bytes(memory_limit) + ADDRESS_SPACE_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


class QueryError(Exception):
    pass


def connect_release(path: Path, memory_limit: str = QUERY_MEMORY_LIMIT):
    """Open a release's DuckDB file read-only on a locked connection (no files, no extensions, capped memory,
    spills in a private temporary directory outside the release)."""
    from pipelines.package.duck import open_duckdb

    return open_duckdb(path, read_only=True, memory_limit=memory_limit, threads=QUERY_THREADS)


def _hard_stop(timeout: float, cleanup) -> None:
    sys.stderr.write(f"error: the query ran longer than --timeout {timeout:g} seconds and did not stop when interrupted; it was ended\n")
    sys.stderr.flush()
    cleanup()
    os._exit(1)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool  # more rows than max_rows: only the first max_rows are in rows


def run_query(
    path: Path,
    sql: str,
    memory_limit: str = QUERY_MEMORY_LIMIT,
    timeout: float = QUERY_TIMEOUT_SECONDS,
    max_rows: int | None = QUERY_MAX_ROWS,
    hard_stop: bool = False,
) -> QueryResult:
    """Run one read-only query under a memory cap and a wall-time limit (a timer thread interrupts the
    connection); fetch at most max_rows + 1 rows so a huge result is never held in memory.

    hard_stop (the CLI): if the query has not stopped QUERY_GRACE_SECONDS after the interrupt, end the
    process with the time-limit message (exit 1)."""
    import duckdb

    from pipelines.package.duck import remove_spill_directories

    con = connect_release(path, memory_limit)
    timed_out = threading.Event()

    def interrupt():
        timed_out.set()
        con.interrupt()
        if hard_stop:
            killer = threading.Timer(QUERY_GRACE_SECONDS, _hard_stop, (timeout, remove_spill_directories))
            killer.daemon = True
            killer.start()

    timer = threading.Timer(timeout, interrupt) if timeout else None
    if timer:
        timer.daemon = True
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
    """A plain aligned text table (what the cookbook shows); CR, LF, tab and every character
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
