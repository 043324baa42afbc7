"""Row-level differences between two snapshots of the data: a git ref, a release directory or a working tree.

Both snapshots are loaded into one DuckDB connection as views <prefix>_<table>; rows are matched on
the primary key, and every changed field is reported old -> new. Schema changes (columns added,
removed or retyped) are reported separately and loudly.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.checks import q, register_tables
from pipelines.package import Package, load_package
from pipelines.tables import LINE, read_tables


@dataclass
class Snapshot:
    label: str
    tables: dict[str, dict]  # table -> {"key": [...], "columns": {name: type}}


@dataclass
class TableDiff:
    table: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str, str, str]] = field(default_factory=list)  # key, column, old, new
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    columns_retyped: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.columns_added or self.columns_removed or self.columns_retyped)


class SnapshotError(Exception):
    pass


def load_package_snapshot(con, pkg: Package, prefix: str, label: str) -> Snapshot:
    loaded, _ = read_tables(pkg, con, prefix=prefix + "_")
    register_tables(con, loaded, prefix=prefix + "_")
    tables = {}
    for name, table in pkg.tables.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + '_' + name)} AS SELECT * EXCLUDE ({q(LINE)}) FROM {q(prefix + '_typed_' + name)}")
        tables[name] = {"key": list(table.primary_key), "columns": {f.name: f.type for f in table.fields}}
    return Snapshot(label, tables)


def load_release_snapshot(con, release: Path, prefix: str) -> Snapshot:
    import json

    desc = json.loads((release / "datapackage.json").read_text(encoding="utf-8"))
    tables = {}
    for res in desc["resources"]:
        path = release / res["path"]
        name = res["name"]
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + '_' + name)} AS SELECT * FROM read_parquet({_lit(str(path))})")
        tables[name] = {"key": res["schema"].get("primaryKey", []), "columns": {f["name"]: f["type"] for f in res["schema"]["fields"]}}
    return Snapshot(f"release {desc.get('version', release.name)}", tables)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_git_snapshot(con, root: Path, ref: str, prefix: str) -> Snapshot:
    """The descriptor, schemas and data as they are at a git ref (extracted to a temporary directory)."""
    try:
        proc = subprocess.run(["git", "archive", "--format=tar", ref, "datapackage.json", "schemas", "data"], cwd=root, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SnapshotError(f"cannot run git: {exc}") from None
    if proc.returncode != 0:
        raise SnapshotError(f"git cannot read {ref!r}: {proc.stderr.decode(errors='replace').strip()}")
    tmp = Path(tempfile.mkdtemp(prefix="model-atlas-diff-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        snap = load_package_snapshot(con, load_package(tmp), prefix, ref)
        # materialise now: the temporary files go away
        for name in snap.tables:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {q(prefix + '_' + name + '_m')} AS SELECT * FROM {q(prefix + '_' + name)}")
            con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + '_' + name)} AS SELECT * FROM {q(prefix + '_' + name + '_m')}")
        return snap
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def derived_column_names() -> set[str]:
    from pipelines.release_schema import DERIVED

    return {c.name for cols in DERIVED.values() for c in cols if c.name != "release_date"}


def current_snapshot(con, pkg, as_of, release_form: bool = False):
    """The data being built, as views new_<table>: CSV form, or release form (typed, derived columns)."""
    from pipelines.release import create_release_views  # late: release imports this module
    from pipelines.release_schema import release_columns

    if release_form:
        create_release_views(con, pkg, as_of)
    tables = {}
    for name, table in pkg.tables.items():
        source = q("release_" + name) if release_form else f"(SELECT * EXCLUDE (__line) FROM {q('typed_' + name)})"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q('new_' + name)} AS SELECT * FROM {source}")
        cols = {c.name: c.type for c in release_columns(table)} if release_form else {f.name: f.type for f in table.fields}
        tables[name] = {"key": list(table.primary_key), "columns": cols}
    return Snapshot("this build", tables)


def diff_snapshots(con, old: Snapshot, new: Snapshot, old_prefix: str = "old", new_prefix: str = "new", ignore: set[str] = frozenset()) -> list[TableDiff]:
    """Per table: keys added and removed, fields changed old -> new, and schema changes.

    Columns in ignore (derived review state such as review_status) are not compared row by row.
    """
    out = []
    for name in sorted(set(old.tables) | set(new.tables)):
        d = TableDiff(name)
        if name not in old.tables:
            d.columns_added = list(new.tables[name]["columns"])
            out.append(d)
            continue
        if name not in new.tables:
            d.columns_removed = list(old.tables[name]["columns"])
            out.append(d)
            continue
        ocols, ncols = old.tables[name]["columns"], new.tables[name]["columns"]
        d.columns_added = [c for c in ncols if c not in ocols]
        d.columns_removed = [c for c in ocols if c not in ncols]
        key = new.tables[name]["key"]
        common = [c for c in ncols if c in ocols and c not in key]
        d.columns_retyped = [(c, ocols[c], ncols[c]) for c in common if ocols[c] != ncols[c]]
        if not key or any(k not in ocols for k in key):
            out.append(d)
            continue
        o, n = q(old_prefix + "_" + name), q(new_prefix + "_" + name)
        keyexpr = lambda t, key=key: " || '/' || ".join(f"coalesce(CAST({t}.{q(k)} AS VARCHAR), '')" for k in key)  # noqa: E731
        on = " AND ".join(f"o.{q(k)} IS NOT DISTINCT FROM n.{q(k)}" for k in key)
        d.added = [r[0] for r in con.execute(f"SELECT {keyexpr('n')} AS k FROM {n} n ANTI JOIN {o} o ON {on} ORDER BY k").fetchall()]
        d.removed = [r[0] for r in con.execute(f"SELECT {keyexpr('o')} AS k FROM {o} o ANTI JOIN {n} n ON {on} ORDER BY k").fetchall()]
        comparable = [c for c in common if ocols[c] == ncols[c] and c not in ignore]
        if comparable:
            parts = [
                f"SELECT {keyexpr('n')} AS k, {_lit(c)} AS col, CAST(o.{q(c)} AS VARCHAR) AS old, CAST(n.{q(c)} AS VARCHAR) AS new "
                f"FROM {o} o JOIN {n} n ON {on} WHERE o.{q(c)} IS DISTINCT FROM n.{q(c)}"
                for c in comparable
            ]
            d.changed = [tuple(r) for r in con.execute(" UNION ALL ".join(parts) + " ORDER BY k, col").fetchall()]
        out.append(d)
    return out


LIST_LIMIT = 40


def _keys(keys: list[str]) -> str:
    shown = ", ".join(f"`{k}`" for k in keys[:LIST_LIMIT])
    return shown + (f", and {len(keys) - LIST_LIMIT} more (the release_changes table lists all)" if len(keys) > LIST_LIMIT else "")


def _cell(v) -> str:
    return "(empty)" if v is None else str(v).replace("|", "\\|").replace("\n", " ")


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
            lines += [f"| `{k}` | {c} | {_cell(a)} | {_cell(b)} |" for k, c, a, b in d.changed]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
