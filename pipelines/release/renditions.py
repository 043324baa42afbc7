"""The two files of each released table: its Parquet file and its CSV rendition.

The Parquet file (parquet/<table>.parquet) is what DuckDB, pandas, polars and the Hugging Face card
read. The CSV rendition (csv/<table>.csv) is what the release datapackage.json's resources describe,
so that the standard Data Package tool (frictionless) validates a release as it is: it is written
from the Parquet file itself, in the text form the resource's Table Schema declares, and verify
checks that the two hold the same rows (docs/decisions.md, 37).
"""

from __future__ import annotations

import filecmp
import os
import threading
from pathlib import Path

from pipelines.package.descriptor import Package, Table
from pipelines.package.sql import lit, q
from pipelines.release.schema import Column, csv_cell_sql, release_columns

CSV_DIR = "csv"
PARQUET_DIR = "parquet"
PARQUET_MEDIATYPE = "application/vnd.apache.parquet"
# one dialect, stated once: what DuckDB writes and what verify reads back (RFC 4180 with LF line ends)
CSV_WRITE_OPTIONS = "FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULLSTR ''"


def csv_path(name: str) -> str:
    """Where a table's CSV rendition lies inside a release."""
    return f"{CSV_DIR}/{name}.csv"


def parquet_path(name: str) -> str:
    """Where a table's Parquet file lies inside a release."""
    return f"{PARQUET_DIR}/{name}.parquet"


def csv_select(fields: list[tuple[str, str]], parquet: Path, order: list[str] = ()) -> str:
    """The rows of a Parquet file as a CSV rendition holds them: every column ((name, Table Schema type) in order)
    as the text csv_cell_sql gives, in the order of the key columns named (else in the file's order)."""
    cells = ", ".join(f"{csv_cell_sql(Column(n, t, ''), 't.' + q(n))} AS {q(n)}" for n, t in fields)
    sort = f" ORDER BY {', '.join('t.' + q(k) for k in order)}" if order else ""
    return f"SELECT {cells} FROM read_parquet({lit(str(parquet))}) t{sort}"


def release_fields(table: Table) -> list[tuple[str, str]]:
    """A released table's columns as (name, Table Schema type), in order."""
    return [(c.name, c.type) for c in release_columns(table)]


def write_csv_renditions(con, pkg: Package, release: Path) -> None:
    """csv/<table>.csv for every table, written by DuckDB from the table's Parquet file in the release being
    built (so the two cannot disagree): UTF-8, a header row, LF line ends, quotes only where a cell needs them,
    rows in primary-key order as in the Parquet file; byte-identical for the same Parquet file."""
    (release / CSV_DIR).mkdir(exist_ok=True)
    for name, table in pkg.tables.items():
        source, target = (release / parquet_path(name)).resolve(), (release / csv_path(name)).resolve()
        con.execute(f"COPY ({csv_select(release_fields(table), source, list(table.primary_key))}) TO {lit(str(target))} ({CSV_WRITE_OPTIONS})")


def csv_header(path: Path, limit: int = 1 << 16) -> list[str] | None:
    """The column names on the first line of a CSV rendition (None when there is no complete first line)."""
    with open(path, "rb") as fh:
        head = fh.read(limit)
    line, newline, _ = head.partition(b"\n")
    if not newline:
        return None
    try:
        return line.decode("utf-8").split(",")
    except UnicodeDecodeError:
        return None


def csv_layout_problem(path: Path) -> str | None:
    """What a standard reader would take for an extra or missing row: a blank line (frictionless calls
    it a blank row) or a last line without its newline. Read in blocks; a quoted cell never holds a
    blank line because a release's cells hold no line breaks."""
    previous = b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            if b"\n\n" in previous[-1:] + block or block.startswith(b"\n") and previous.endswith(b"\n"):
                return "holds a blank line"
            previous = block
    if not previous.endswith(b"\n"):
        return "does not end with a newline"
    return None


def csv_parquet_differences(con, fields: list[tuple[str, str]], csv_file: Path, parquet_file: Path) -> tuple[int, int, int]:
    """(rows in the CSV, rows in the Parquet file, rows in one and not the other, counted with duplicates) for a
    table whose release columns are fields ((name, Table Schema type) in order).

    Quick when they agree: the Parquet rows rendered again (into the connection's private temporary directory)
    are byte for byte the CSV file. Otherwise the CSV is read strictly as text and compared, row for row as a
    multiset, with the Parquet rows rendered as the CSV must hold them (so a release written by another DuckDB
    version, quoting or ordering differently, still verifies when its rows are the same)."""
    parquet_rows = f"SELECT count(*) FROM read_parquet({lit(str(parquet_file))})"
    scratch = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0]) / f"rendition-{os.getpid()}-{threading.get_ident()}.csv"
    try:
        con.execute(f"COPY ({csv_select(fields, parquet_file)}) TO {lit(str(scratch))} ({CSV_WRITE_OPTIONS})")
        if filecmp.cmp(scratch, csv_file, shallow=False):
            n = con.execute(parquet_rows).fetchone()[0]
            return n, n, 0
    finally:
        scratch.unlink(missing_ok=True)
    spec = "{" + ", ".join(f"{lit(n)}: 'VARCHAR'" for n, _ in fields) + "}"
    read = (
        f"read_csv({lit(str(csv_file))}, header = true, auto_detect = false, columns = {spec}, delim = ',', quote = '\"', escape = '\"', "
        "new_line = '\\n', allow_quoted_nulls = false, strict_mode = true, null_padding = false, encoding = 'utf-8')"
    )
    in_csv, in_parquet, differ = con.execute(
        f"WITH c AS MATERIALIZED (SELECT * FROM {read}), p AS MATERIALIZED ({csv_select(fields, parquet_file)}) "
        "SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM p), "
        "(SELECT count(*) FROM (FROM c EXCEPT ALL FROM p)) + (SELECT count(*) FROM (FROM p EXCEPT ALL FROM c))"
    ).fetchone()
    return in_csv, in_parquet, differ
