"""Read the CSV tables: file hygiene first, then a fast Arrow parse, with a careful line-tracking
parse only for files whose structure is broken (so every finding can name its line)."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipelines.package.descriptor import Package, Table
from pipelines.package.findings import CappedList, Finding, did_you_mean
from pipelines.package.sql import lit, q, typed_columns, typed_ref

LINE = "__line"
DEFAULT_FILE_BYTES = 512 * 1024 * 1024
# files DuckDB's strict reader cannot load are re-read line by line in Python, which holds the whole
# file and its cells in memory (about 15 times the file's size): above this size they are not re-read
CAREFUL_MAX_BYTES = 64 * 1024 * 1024
# Python's csv module refuses fields over 131,072 characters by default; a file within the size limit
# may hold longer cells (cell-too-long reports them), so the careful reader must accept any such field
csv.field_size_limit(DEFAULT_FILE_BYTES)
# RFC 4180 exactly, nothing guessed: no sniffing, no padding of short rows, errors instead of repairs
DUCKDB_CSV_OPTIONS = (
    "header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"', new_line = '\\n', "
    "strict_mode = true, null_padding = false, compression = 'none', max_line_size = 8388608"
)


@dataclass
class LoadedTable:
    """A table's cells as strings (None = empty), positionally mapped to schema fields, with editor line numbers."""

    table: Table
    file: str
    rows: int  # the cells live in DuckDB: see read_table
    present: bool


def package_files(pkg: Package) -> list[Path]:
    """The resolved paths of the package's CSV files: the only files a package connection may read."""
    out = []
    for table in pkg.tables.values():
        try:
            out.append((pkg.root / table.path).resolve())
        except (OSError, RuntimeError):  # a symlink loop: read_table reports it
            continue
    return out


PACKAGE_MEMORY_LIMIT = "1200MB"  # DuckDB's share while checking a package (build's --memory-limit overrides it)


def connect_package(pkg: Package, directories=(), memory_limit: str | None = None):
    """A locked in-memory DuckDB connection that may read the package's CSV files and nothing else
    (plus the directories named, such as a release being written)."""
    from pipelines.package.duck import open_duckdb

    return open_duckdb(files=package_files(pkg), directories=directories, memory_limit=memory_limit or PACKAGE_MEMORY_LIMIT)


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def check_bytes(file: str, data: bytes) -> tuple[str | None, list[Finding]]:
    """File hygiene on raw bytes: BOM, encoding, CRLF, final newline. Returns the text to parse."""
    findings: list[Finding] = []
    if not data:
        return None, [Finding(file, 0, "", "empty-file", "the file is empty: not even a header row")]
    if data.startswith(b"\xef\xbb\xbf"):
        findings.append(Finding(file, 1, "", "bom", "the file starts with a UTF-8 byte order mark"))
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of_offset(data, exc.start)
        findings.append(Finding(file, line, "", "encoding", f"byte 0x{data[exc.start]:02x} at line {line} is not valid UTF-8"))
        text = data.decode("utf-8", errors="replace")
    crlf = text.find("\r\n")
    if crlf >= 0:
        findings.append(Finding(file, text.count("\n", 0, crlf) + 1, "", "line-endings", "the file uses CRLF (Windows) line endings"))
        text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        findings.append(Finding(file, text.count("\n") + 1, "", "final-newline", "the last line does not end with a newline"))
        text += "\n"
    return text, findings


def _header(text: str) -> list[str]:
    first = text.split("\n", 1)[0]
    return next(csv.reader([first]), [])


def check_header(file: str, header: list[str], table: Table) -> list[Finding]:
    """Compare the header with the schema's field names, position by position (frictionless semantics)."""
    findings = []
    names = table.field_names
    seen: set[str] = set()
    for i in range(max(len(header), len(names))):
        if i >= len(names):
            findings.append(
                Finding(
                    file, 1, header[i], "extra-header", f'column {i + 1} "{header[i]}" is not in the schema of {table.name}{did_you_mean(header[i], names)}'
                )
            )
            continue
        if i >= len(header):
            findings.append(Finding(file, 1, names[i], "missing-header", f'the header lacks column {i + 1} "{names[i]}"'))
            continue
        label = header[i]
        if label in seen:
            findings.append(Finding(file, 1, label, "duplicate-header", f'column {i + 1} repeats the name "{label}"'))
        elif label == "":
            findings.append(Finding(file, 1, names[i], "blank-header", f'column {i + 1} has no name; the schema calls it "{names[i]}"'))
        elif label != names[i]:
            findings.append(
                Finding(file, 1, names[i], "header", f'column {i + 1} is "{label}" but the schema expects "{names[i]}"{did_you_mean(label, names)}')
            )
        seen.add(label)
    return findings


def _scan_bytes(path: Path) -> dict:
    """One streaming pass over a file's bytes: the facts that decide whether DuckDB's reader can load it.

    Reads in 16 MiB chunks so a large file never sits in memory twice. Blank lines are looked for
    only in single-column files: with two or more columns DuckDB's reader skips a blank line, and
    the record count then falls short of the line count, which sends the file to the careful reader.
    """
    facts = {"bom": False, "cr": False, "blank": False, "newlines": 0, "last": b"", "header": None}
    prev = b"\n"  # a leading newline is a blank first line
    single = False
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            if facts["header"] is None:
                facts["bom"] = chunk.startswith(b"\xef\xbb\xbf")
                cut = chunk.find(b"\n")
                facts["header"] = chunk[:cut] if cut > 0 else b""  # an empty or over-long header: careful reader
                single = b"," not in facts["header"] or b'"' in facts["header"]
            facts["cr"] = facts["cr"] or b"\r" in chunk
            if single:
                facts["blank"] = facts["blank"] or b"\n\n" in chunk or (prev == b"\n" and chunk[:1] == b"\n")
            facts["newlines"] += chunk.count(b"\n")
            prev = chunk[-1:]
        facts["last"] = prev
    return facts


def large_file_findings(file: str, size: int, facts: dict) -> list[Finding]:
    """A file over CAREFUL_MAX_BYTES that DuckDB's strict reader cannot load: its byte-level hygiene
    findings and one finding saying its cells were not checked."""
    findings = []
    if facts["bom"]:
        findings.append(Finding(file, 1, "", "bom", "the file starts with a UTF-8 byte order mark"))
    if facts["cr"]:
        findings.append(Finding(file, 0, "", "line-endings", "the file contains carriage returns (CRLF line endings, or CR inside cells)"))
    if facts["last"] != b"\n":
        findings.append(Finding(file, facts["newlines"] + 1, "", "final-newline", "the last line does not end with a newline"))
    findings.append(
        Finding(
            file,
            0,
            "",
            "large-file-not-strict",
            f"the file has {size} bytes and is not strict RFC 4180 CSV with one record per line (quotes spanning lines, blank lines, "
            f"CR, a BOM or bytes that are not UTF-8); files over {CAREFUL_MAX_BYTES // (1 << 20)} MiB are read only in that form, so its cells were not checked",
        )
    )
    return findings


def _views(con, prefix: str, table: Table, stored_line: bool) -> None:
    """<prefix>raw_<name>: __line, the raw strings and the stored typed values; <prefix>typed_<name>: __line and typed fields.

    A file read by DuckDB has no stored line: row i (its rowid, the insertion order, which DuckDB keeps
    equal to the file order) sits on line i + 2.
    """
    cells = q(f"{prefix}cells_{table.name}")
    line = q(LINE) if stored_line else "rowid + 2"
    rest = f"* EXCLUDE ({q(LINE)})" if stored_line else "*"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + 'raw_' + table.name)} AS SELECT {line} AS {q(LINE)}, {rest} FROM {cells}")
    typed = "".join(f", {typed_ref(f)} AS {q(f.name)}" for f in table.fields)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + 'typed_' + table.name)} AS SELECT {line} AS {q(LINE)}{typed} FROM {cells}")


def _typed_select(table: Table) -> str:
    """The select-list tail that stores each non-text field's typed value beside its raw string."""
    return "".join(f", {expr} AS {q(name)}" for name, expr in typed_columns(table))


def _load_fast(con, path: Path, prefix: str, table: Table, ncols: int, newlines: int) -> bool:
    """Load with DuckDB's parallel CSV reader; False if it cannot be done exactly.

    Exact means one record per line, so the editor line of row i is i + 2: the record count must
    equal the line count, or the file goes to the careful reader.
    """
    import duckdb

    text = str(path.resolve())  # the path the connection was allowed to read
    if any(ch in text for ch in "*?[{") or ncols == 0:  # DuckDB would expand a glob
        return False
    names = table.field_names
    cells = q(f"{prefix}cells_{table.name}")
    columns = "{" + ", ".join(f"{lit(f'c{i}')}: 'VARCHAR'" for i in range(ncols)) + "}"
    select = ", ".join(f"c{i} AS {q(names[i])}" if i < ncols else f"NULL::VARCHAR AS {q(names[i])}" for i in range(len(names)))
    typed = _typed_select(table)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {cells} AS SELECT *{typed} FROM "
            f"(SELECT {select} FROM read_csv({lit(text)}, columns = {columns}, {DUCKDB_CSV_OPTIONS}))"
        )
    except duckdb.Error:
        return False
    if con.execute(f"SELECT count(*) FROM {cells}").fetchone()[0] != newlines - 1:
        con.execute(f"DROP TABLE {cells}")
        return False
    _views(con, prefix, table, stored_line=False)
    return True


def _load_columns(con, prefix: str, table: Table, columns: list[list], lines: list[int]) -> None:
    """Load columns parsed in Python, with their editor lines."""
    import pyarrow as pa

    names = table.field_names
    nrows = len(lines)
    arrays = [pa.array(columns[i], pa.string()) if i < len(columns) else pa.nulls(nrows, pa.string()) for i in range(len(names))]
    arrow = pa.Table.from_arrays([pa.array(lines, pa.int64()), *arrays], names=[LINE, *names])
    cells = f"{prefix}cells_{table.name}"
    typed = _typed_select(table)
    con.register(cells + "__arrow", arrow)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {q(cells)} AS SELECT *{typed} FROM {q(cells + '__arrow')}")
    con.unregister(cells + "__arrow")
    _views(con, prefix, table, stored_line=True)


def _parse_careful(file: str, text: str, ncols: int, names: list[str]):
    """Python's csv module, tracking the line each record starts on; reports structural problems."""
    findings = CappedList()
    columns: list[list] = [[] for _ in range(ncols)]
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text), strict=True)
    start = 1
    try:
        next(reader)  # header
        start = reader.line_num + 1
        for record in reader:
            end = reader.line_num
            if end > start:
                findings.append(Finding(file, start, "", "embedded-newline", f"a quoted cell spans lines {start} to {end}"))
            if not record:
                findings.append(Finding(file, start, "", "blank-row", "the line is empty"))
                start = end + 1
                continue
            if len(record) > ncols:
                findings.append(Finding(file, start, "", "extra-cell", f"the row has {len(record)} cells; the header has {ncols}"))
            elif len(record) < ncols:
                for missing in names[len(record) : ncols]:
                    findings.append(
                        Finding(
                            file, start, missing, "missing-cell", f"the row has {len(record)} cells; {missing} (column {names.index(missing) + 1}) is missing"
                        )
                    )
            for i in range(ncols):
                columns[i].append(record[i] if i < len(record) and record[i] != "" else None)
            lines.append(start)
            start = end + 1
    except csv.Error as exc:
        if "new-line character" not in str(exc):
            findings.append(Finding(file, start, "", "unbalanced-quote", f"a quoted cell opened at line {start} is never closed"))
        # salvage the rest line by line so one bad quote or stray carriage return does not hide the rows after it
        for offset, line_text in enumerate(text.split("\n")[start - 1 : -1]):
            try:
                record = next(csv.reader([line_text]), [])
            except csv.Error:
                findings.append(Finding(file, start + offset, "", "control-char", "a carriage return (U+000D) stands inside a cell"))
                record = next(csv.reader([line_text.replace("\r", " ")]), [])
            for i in range(ncols):
                columns[i].append(record[i] if i < len(record) and record[i] != "" else None)
            lines.append(start + offset)
    return columns, lines, findings.closed()


def read_table(con, root: Path, table: Table, limits: dict, prefix: str = "", scanned=None) -> tuple[LoadedTable, list[Finding]]:
    """Load one resource into DuckDB (views <prefix>raw_<name> and <prefix>typed_<name>), reporting every
    hygiene and structure problem with its line."""
    file = table.path
    path = root / table.path
    names = table.field_names

    if not path.is_file():
        _load_columns(con, prefix, table, [], [])
        return LoadedTable(table, file, 0, False), [Finding(file, 0, "", "missing-file", f"the resource {table.name} points at {file}, which does not exist")]
    size = path.stat().st_size
    max_bytes = int(limits.get("file_bytes", DEFAULT_FILE_BYTES))
    if size > max_bytes:
        _load_columns(con, prefix, table, [], [])
        return LoadedTable(table, file, 0, True), [Finding(file, 0, "", "file-too-large", f"the file has {size} bytes; the limit is {max_bytes}")]
    facts = (scanned.result() if scanned else _scan_bytes(path)) if size else None
    if facts and facts["header"] and not (facts["bom"] or facts["cr"] or facts["blank"]) and facts["last"] == b"\n":
        # the common case: hygiene holds on the bytes, and DuckDB's reader validates UTF-8 itself
        header = next(csv.reader([facts["header"].decode("utf-8", errors="replace")]), [])
        findings = check_header(file, header, table)
        if _load_fast(con, path, prefix, table, len(header), facts["newlines"]):
            nrows = facts["newlines"] - 1
            if nrows == 0:
                findings.append(Finding(file, 1, "", "no-rows", f"{file} has a header but no rows"))
            return LoadedTable(table, file, nrows, True), findings
    if size > CAREFUL_MAX_BYTES:
        # too large for the line-by-line reader's memory: report what the byte scan saw, check no cells
        _load_columns(con, prefix, table, [], [])
        return LoadedTable(table, file, 0, True), large_file_findings(file, size, facts)
    # anything unusual: decode in Python, report each hygiene and structure problem at its line
    text, findings = check_bytes(file, path.read_bytes())
    if text is None:
        _load_columns(con, prefix, table, [], [])
        return LoadedTable(table, file, 0, True), findings
    header = _header(text)
    findings += check_header(file, header, table)
    ncols = len(header)
    raw_columns, lines, structural = _parse_careful(file, text, ncols, header + [f"column-{i + 1}" for i in range(len(header), ncols)])
    findings += structural
    _load_columns(con, prefix, table, raw_columns[: len(names)], lines)
    if not lines:
        findings.append(Finding(file, 1, "", "no-rows", f"{file} has a header but no rows"))
    return LoadedTable(table, file, len(lines), True), findings


def unlisted_files(pkg: Package) -> list[Finding]:
    """CSV files under the resources' folders that the descriptor does not list."""
    listed = set(package_files(pkg))
    folders = {(pkg.root / t.path).parent for t in pkg.tables.values()}
    findings = []
    for folder in sorted(folders):
        for csv_path in sorted(folder.glob("*.csv")):
            rel = csv_path.relative_to(pkg.root).as_posix()
            try:
                resolved = csv_path.resolve()
            except (OSError, RuntimeError):  # a symlink loop: never followed
                findings.append(Finding(rel, 0, "", "unlisted-file", f"{rel} is a symlink that loops; delete it"))
                continue
            if resolved not in listed:
                findings.append(Finding(rel, 0, "", "unlisted-file", f"{rel} is not a resource of datapackage.json"))
    return findings


def read_tables(pkg: Package, con, prefix: str = "") -> tuple[dict[str, LoadedTable], list[Finding]]:
    """Load every resource into DuckDB (see read_table); never stops at the first problem."""
    findings = unlisted_files(pkg)
    loaded = {}
    limits = pkg.policy.get("limits", {})
    # the byte scans run in a second thread while DuckDB (which releases the GIL) loads the previous file
    with ThreadPoolExecutor(max_workers=1) as pool:
        scans = {}
        for name, table in pkg.tables.items():
            path = pkg.root / table.path
            if path.is_file() and 0 < path.stat().st_size <= int(limits.get("file_bytes", DEFAULT_FILE_BYTES)):
                scans[name] = pool.submit(_scan_bytes, path)
        for name, table in pkg.tables.items():
            lt, f = read_table(con, pkg.root, table, limits, prefix, scans.get(name))
            loaded[name] = lt
            findings += f
    return loaded, findings
