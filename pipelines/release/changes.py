"""What changed between two snapshots, in release form: the data being built as a snapshot, and Markdown for notes and pull requests."""

from __future__ import annotations

from pipelines.package.chars import for_markdown
from pipelines.package.snapshot import Snapshot, TableDiff
from pipelines.package.sql import q
from pipelines.release.schema import create_release_views, release_columns


def derived_column_names(pkg) -> set[str]:
    """Columns a release computes from other rows (review state, bands), which a row diff does not compare."""
    return {c.name for t in pkg.tables.values() for c in release_columns(t) if c.derived and c.name not in {f.name for f in t.fields}}


def current_snapshot(con, pkg, as_of, release_form: bool = False):
    """The data being built, as views new_<table>: CSV form, or release form (typed, derived columns)."""
    if release_form:
        create_release_views(con, pkg, as_of)
    tables = {}
    for name, table in pkg.tables.items():
        source = q("release_" + name) if release_form else f"(SELECT * EXCLUDE (__line) FROM {q('typed_' + name)})"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q('new_' + name)} AS SELECT * FROM {source}")
        cols = {c.name: c.type for c in release_columns(table)} if release_form else {f.name: f.type for f in table.fields}
        tables[name] = {"key": list(table.primary_key), "columns": cols}
    return Snapshot("this build", tables)


LIST_LIMIT = 40


def _keys(keys: list[str]) -> str:
    shown = ", ".join(_code(k) for k in keys[:LIST_LIMIT])
    return shown + (f", and {len(keys) - LIST_LIMIT} more (the release_changes table lists all)" if len(keys) > LIST_LIMIT else "")


def _code(key: str) -> str:
    """A row key as inline code."""
    return "`" + for_markdown(key) + "`"


def _cell(v) -> str:
    """A value inside a Markdown table cell (see chars.for_markdown)."""
    return "(empty)" if v is None else for_markdown(v)


def diff_markdown(diffs: list[TableDiff], old_label: str, new_label: str) -> str:
    """Markdown for a PR summary or release notes; schema changes first and loud."""
    lines = [f"Changes from {old_label} to {new_label}.", ""]
    breaking = [(d.table, c) for d in diffs for c in d.columns_removed] + [(d.table, f"{c} ({a} -> {b})") for d in diffs for c, a, b in d.columns_retyped]
    if breaking:
        lines += ["### Schema changes that can break queries", ""]
        lines += [f"- **BREAKING**: `{t}.{c}` removed or retyped" for t, c in breaking]
        lines.append("")
    added_cols = [(d.table, c) for d in diffs for c in d.columns_added]
    if added_cols:
        lines += ["### Columns added", ""] + [f"- `{t}.{c}`" for t, c in added_cols] + [""]
    lines += ["| table | added | removed | changed rows |", "|---|---:|---:|---:|"]
    for d in diffs:
        lines.append(f"| {d.table} | {len(d.added)} | {len(d.removed)} | {len({c[0] for c in d.changed})} |")
    lines.append("")
    for d in diffs:
        if not (d.added or d.removed or d.changed):
            continue
        lines += [f"### {d.table}", ""]
        if d.added:
            lines.append(f"Added ({len(d.added)}): " + _keys(d.added))
            lines.append("")
        if d.removed:
            lines.append(f"Removed ({len(d.removed)}): " + _keys(d.removed))
            lines.append("")
        if d.changed:
            lines += ["| row | field | old | new |", "|---|---|---|---|"]
            lines += [f"| {_code(k)} | {c} | {_cell(a)} | {_cell(b)} |" for k, c, a, b in d.changed]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
