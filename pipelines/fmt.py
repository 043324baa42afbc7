"""fmt: put every CSV into canonical form without changing a value or dropping a row.

Canonical: UTF-8 without BOM, LF, header equal to the schema, cells trimmed, minimal quoting, rows
sorted by primary key. Files with structural problems are left alone (validate explains them).
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from pathlib import Path

from pipelines.package import Package, Table
from pipelines.tables import check_bytes, check_header

STRUCTURAL = {
    "encoding",
    "embedded-newline",
    "unbalanced-quote",
    "extra-cell",
    "missing-cell",
    "blank-row",
    "header",
    "missing-header",
    "extra-header",
    "duplicate-header",
    "blank-header",
    "empty-file",
}


def canonical_text(rows: list[list[str]], table: Table) -> str:
    """The canonical CSV text for rows (already trimmed, one cell per schema field)."""
    names = table.field_names
    index = [names.index(k) for k in table.primary_key] or list(range(len(names)))
    ordered = sorted(rows, key=lambda r: tuple(r[i] for i in index) + tuple(r))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(names)
    writer.writerows(ordered)
    return buf.getvalue()


def read_rows(path: Path, table: Table) -> tuple[list[list[str]] | None, str]:
    """Rows with trimmed cells, or None and the reason when the file is not safe to rewrite."""
    data = path.read_bytes()
    text, findings = check_bytes(table.path, data)
    if text is None:
        return None, "empty file"
    bad = [f for f in findings if f.code in STRUCTURAL]
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        records = list(reader)
    except csv.Error as exc:
        return None, f"cannot parse: {exc}"
    if not records:
        return None, "empty file"
    bad += [f for f in check_header(table.path, records[0], table) if f.code in STRUCTURAL]
    width = len(table.field_names)
    for n, rec in enumerate(records[1:], 2):
        if len(rec) != width:
            return None, f"line {n}: {len(rec)} cells, expected {width}"
        if any("\n" in cell or "\r" in cell for cell in rec):
            return None, f"line {n}: a cell contains a line break"
    if bad:
        return None, bad[0].message
    return [[cell.strip() for cell in rec] for rec in records[1:]], ""


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside path, then rename over it: a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def format_package(pkg: Package, check: bool) -> tuple[list[str], list[str]]:
    """(files changed or that would change, files skipped with reasons). Writes only when not check."""
    changed, skipped = [], []
    for table in pkg.tables.values():
        path = pkg.root / table.path
        if not path.is_file():
            continue
        rows, reason = read_rows(path, table)
        if rows is None:
            skipped.append(f"{table.path}: {reason}")
            continue
        text = canonical_text(rows, table)
        # the canonical text must hold exactly the same rows: never change a value, never drop a row
        again = list(csv.reader(io.StringIO(text)))[1:]
        if Counter(map(tuple, again)) != Counter(map(tuple, rows)):
            skipped.append(f"{table.path}: canonical form would change the data; left alone")
            continue
        if text.encode("utf-8") != path.read_bytes():
            changed.append(table.path)
            if not check:
                write_atomic(path, text)
    return changed, skipped
