"""Read the CSV tables: file hygiene first, then a fast Arrow parse, with a careful line-tracking
parse only for files whose structure is broken (so every finding can name its line)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pipelines.findings import Finding, did_you_mean
from pipelines.package import Package, Table

LINE = "__line"
DEFAULT_FILE_BYTES = 512 * 1024 * 1024


@dataclass
class LoadedTable:
    """A table's cells as strings (None = empty), positionally mapped to schema fields, with editor line numbers."""

    table: Table
    file: str
    arrow: object  # pyarrow.Table with the schema's field names plus __line
    present: bool


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


def _simple_structure(data: bytes) -> bool:
    """No blank line and balanced quotes: the fast parser's rows then map one-to-one onto lines."""
    return b"\n\n" not in data and not data.startswith(b"\n") and data.count(b'"') % 2 == 0


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


def _parse_fast(data: bytes, ncols: int):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(ncols)]
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def _parse_careful(file: str, text: str, ncols: int, names: list[str]):
    """Python's csv module, tracking the line each record starts on; reports structural problems."""
    findings: list[Finding] = []
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
    return columns, lines, findings


def read_table(root: Path, table: Table, limits: dict) -> tuple[LoadedTable, list[Finding]]:
    """Load one resource as strings, reporting every hygiene and structure problem with its line."""
    import pyarrow as pa

    file = table.path
    path = root / table.path
    names = table.field_names

    def empty(present: bool):
        arrays = [pa.nulls(0, pa.string()) for _ in names] + [pa.nulls(0, pa.int64())]
        return LoadedTable(table, file, pa.Table.from_arrays(arrays, names=[*names, LINE]), present)

    if not path.is_file():
        return empty(False), [Finding(file, 0, "", "missing-file", f"the resource {table.name} points at {file}, which does not exist")]
    size = path.stat().st_size
    max_bytes = int(limits.get("file_bytes", DEFAULT_FILE_BYTES))
    if size > max_bytes:
        return empty(True), [Finding(file, 0, "", "file-too-large", f"the file has {size} bytes; the limit is {max_bytes}")]
    data = path.read_bytes()
    if data and not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data and data.endswith(b"\n"):
        # the common case: hygiene holds on the bytes, and the Arrow reader validates UTF-8 itself
        text, findings = None, []
        header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", errors="replace")]), [])
    else:
        text, findings = check_bytes(file, data)
        if text is None:
            return empty(True), findings
        header = _header(text)
    findings += check_header(file, header, table)
    ncols = len(header)
    clean_bytes = data if text is None or not findings else text.encode("utf-8")
    arrow = None
    if _simple_structure(clean_bytes):
        try:
            parsed = _parse_fast(clean_bytes, ncols)
        except pa.ArrowInvalid:
            parsed = None
        # one record per line exactly when no quoted cell swallowed a line break (then line = row + 2)
        if parsed is not None and parsed.num_rows == clean_bytes.count(b"\n") - 1:
            import numpy as np

            # from_buffers, not pa.array(ndarray): pa.array imports pandas when it is installed (0.3 s)
            lines = pa.Array.from_buffers(pa.int64(), parsed.num_rows, [None, pa.py_buffer(np.arange(2, parsed.num_rows + 2, dtype=np.int64))])
            arrow = ([parsed.column(i) for i in range(min(ncols, len(names)))], lines)
    if arrow is None:
        if text is None:  # the fast path failed (invalid UTF-8, odd structure): decode and report properly
            text, more = check_bytes(file, data)
            findings += more
        raw_columns, raw_lines, structural = _parse_careful(file, text, ncols, header + [f"column-{i + 1}" for i in range(len(header), ncols)])
        findings += structural
        columns = [pa.array(raw_columns[i], pa.string()) for i in range(min(ncols, len(names)))]
        lines = pa.array(raw_lines, pa.int64())
        arrow = (columns, lines)
    columns, lines = arrow
    nrows = len(lines)
    arrays = [columns[i] if i < len(columns) else pa.nulls(nrows, pa.string()) for i in range(len(names))]
    if nrows == 0:
        findings.append(Finding(file, 1, "", "no-rows", f"{file} has a header but no rows"))
    return LoadedTable(table, file, pa.Table.from_arrays([*arrays, lines], names=[*names, LINE]), True), findings


def unlisted_files(pkg: Package) -> list[Finding]:
    """CSV files under the resources' folders that the descriptor does not list."""
    listed = {(pkg.root / t.path).resolve() for t in pkg.tables.values()}
    folders = {(pkg.root / t.path).parent for t in pkg.tables.values()}
    findings = []
    for folder in sorted(folders):
        for csv_path in sorted(folder.glob("*.csv")):
            if csv_path.resolve() not in listed:
                rel = csv_path.relative_to(pkg.root).as_posix()
                findings.append(Finding(rel, 0, "", "unlisted-file", f"{rel} is not a resource of datapackage.json"))
    return findings


def read_tables(pkg: Package) -> tuple[dict[str, LoadedTable], list[Finding]]:
    """Load every resource; never stops at the first problem."""
    findings = unlisted_files(pkg)
    loaded = {}
    limits = pkg.policy.get("limits", {})
    for name, table in pkg.tables.items():
        lt, f = read_table(pkg.root, table, limits)
        loaded[name] = lt
        findings += f
    return loaded, findings
