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

from pipelines.package import chars
from pipelines.package.descriptor import Package, Table
from pipelines.package.tables import CAREFUL_MAX_BYTES, check_bytes, check_header

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
    if path.stat().st_size > CAREFUL_MAX_BYTES:
        return None, f"larger than {CAREFUL_MAX_BYTES // (1 << 20)} MiB; fmt rewrites only smaller files"
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
    # the only change to a cell: whitespace at its ends, which validate reports first (rule whitespace)
    return [[chars.trimmed(cell) for cell in rec] for rec in records[1:]], ""


def write_atomic(path: Path, text: str) -> None:
    """Write one file: temporary file beside it, then a rename. A crash never leaves half a file."""
    write_files_atomic({path: text})


def write_files_atomic(texts: dict[Path, str]) -> None:
    """Write several files so that a failure at any point leaves every one of them as it was.

    All new contents are written and synced to temporary files first; only then are they renamed
    into place, each original kept as a hard-linked backup until every rename has succeeded. If any
    step fails, the originals are restored byte for byte and the temporary files removed.
    """
    tag = f"{os.getpid()}"
    staged: list[tuple[Path, Path, Path]] = []
    replaced: list[tuple[Path, Path]] = []
    try:
        for path, text in texts.items():
            tmp, backup = path.with_name(f".{path.name}.tmp-{tag}"), path.with_name(f".{path.name}.bak-{tag}")
            staged.append((path, tmp, backup))
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        for path, tmp, backup in staged:
            if path.exists():
                os.link(path, backup)
            os.replace(tmp, path)
            replaced.append((path, backup))
    except BaseException:
        for path, backup in reversed(replaced):
            if backup.exists():
                os.replace(backup, path)
            else:
                path.unlink(missing_ok=True)  # the file did not exist before
        raise
    finally:
        for _, tmp, backup in staged:
            tmp.unlink(missing_ok=True)
            backup.unlink(missing_ok=True)


def format_package(pkg: Package, check: bool) -> tuple[list[str], list[str]]:
    """(files changed or that would change, files skipped with reasons). Writes only when not check."""
    changed, skipped = [], []
    pending: dict[Path, str] = {}
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
            pending[path] = text
    if pending and not check:
        write_files_atomic(pending)
    return changed, skipped
