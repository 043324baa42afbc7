"""Snapshots of the package's data: a git ref, a release directory or a working tree, and their row-level differences.

Both snapshots are loaded into one DuckDB connection as views <prefix>_<table>; rows are matched on
the primary key, and every changed field is reported old -> new. Schema changes (columns added,
removed or retyped) are reported separately and loudly.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.package.descriptor import Package, PackageError, load_package
from pipelines.package.sql import q
from pipelines.package.tables import LINE, read_tables


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
    read_tables(pkg, con, prefix=prefix + "_")
    tables = {}
    for name, table in pkg.tables.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + '_' + name)} AS SELECT * EXCLUDE ({q(LINE)}) FROM {q(prefix + '_typed_' + name)}")
        tables[name] = {"key": list(table.primary_key), "columns": {f.name: f.type for f in table.fields}}
    return Snapshot(label, tables)


def load_release_snapshot(con, release: Path, prefix: str) -> Snapshot:
    """The tables of a release directory that verify_release has passed, read from their Parquet files: its
    descriptor is read again here, and every name and path is checked before it reaches SQL (a resource's
    CSV rendition must be csv/<name>.csv and its x-parquet path parquet/<name>.parquet, compared as text;
    the connection may read only that directory anyway)."""
    import json
    import re

    ident = re.compile(r"[a-z][a-z0-9_]{0,62}")
    try:
        desc = json.loads((release / "datapackage.json").read_text(encoding="utf-8"))
        tables = {}
        for res in desc["resources"]:
            name = res["name"]
            parquet = res.get("x-parquet")
            if (
                not isinstance(name, str)
                or not ident.fullmatch(name)
                or res["path"] != f"csv/{name}.csv"
                or not isinstance(parquet, dict)
                or parquet.get("path") != f"parquet/{name}.parquet"
            ):
                raise SnapshotError(
                    f"{release}: resource {str(name)[:60]!r} is not a table name with its files at csv/<name>.csv and (x-parquet) parquet/<name>.parquet"
                )
            columns = {f["name"]: f["type"] for f in res["schema"]["fields"]}
            key = res["schema"].get("primaryKey", [])
            if not all(isinstance(c, str) and ident.fullmatch(c) for c in [*columns, *key]) or not set(key) <= set(columns):
                raise SnapshotError(f"{release}: a column name of {name} is not a plain identifier")
            path = (release / parquet["path"]).resolve()
            con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + '_' + name)} AS SELECT * FROM read_parquet({_lit(str(path))})")
            tables[name] = {"key": list(key), "columns": columns}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"{release}: cannot read the release descriptor ({type(exc).__name__}: {str(exc)[:120]})") from None
    version = str(desc.get("version", release.name))[:64]
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+-]*", version):  # it reaches NOTES.md and the DuckDB file as a label
        raise SnapshotError(f"{release}: its version {version[:40]!r} is not a version; a release's version is MAJOR.MINOR.PATCH[-tag]")
    return Snapshot(f"release {version}", tables)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def resolve_commit(root: Path, ref: str) -> str:
    """The commit a git ref names, verified as a ref: a value starting with '-' or naming no commit is refused
    (git rev-parse --verify --end-of-options REF^{commit}), so no ref can become a git option."""
    if not isinstance(ref, str) or not ref or ref.startswith("-") or any(ch in ref for ch in "\0\n\r") or len(ref) > 256:
        raise SnapshotError(f"{ref[:80]!r} is not a git ref (a branch, tag or commit; it may not start with '-')")
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}"], cwd=root, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SnapshotError(f"cannot run git: {exc}") from None
    commit = proc.stdout.strip()
    if proc.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise SnapshotError(f"{ref[:80]!r} names no commit in this repository")
    return commit


def load_git_snapshot(con, root: Path, ref: str, prefix: str) -> Snapshot:
    """The descriptor, schemas and data as they are at a git ref, extracted into the connection's own
    temporary directory (the one place outside the package it may read)."""
    commit = resolve_commit(root, ref)
    try:
        proc = subprocess.run(
            ["git", "archive", "--format=tar", commit, "--", "datapackage.json", "schemas", "data"], cwd=root, capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SnapshotError(f"cannot run git: {exc}") from None
    if proc.returncode != 0:
        raise SnapshotError(f"git cannot read {ref!r}: {proc.stderr.decode(errors='replace').strip()[:300]}")
    workdir = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    tmp = Path(tempfile.mkdtemp(prefix="snapshot-", dir=workdir))
    try:
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        try:
            pkg = load_package(tmp)
        except PackageError as exc:
            raise SnapshotError(f"the package at {ref!r} cannot be read: {exc.findings[0].file}: {exc.findings[0].message}") from None
        snap = load_package_snapshot(con, pkg, prefix, ref)
        # materialise now: the temporary files go away
        for name in snap.tables:
            # "$" cannot occur in a resource name, so the copy cannot collide with another table's view
            con.execute(f"CREATE OR REPLACE TEMP TABLE {q(prefix + '_' + name + '$m')} AS SELECT * FROM {q(prefix + '_' + name)}")
            con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + '_' + name)} AS SELECT * FROM {q(prefix + '_' + name + '$m')}")
        return snap
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def default_base(root: Path) -> tuple[str, str]:
    """The commit a change is compared with when no base is named: the merge base of HEAD with origin/main
    when that branch exists, else with main. Returns (commit, a label saying which)."""
    for branch in ("origin/main", "main"):
        if _git(root, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}") is None:
            continue
        base = _git(root, "merge-base", "HEAD", branch)
        if base:
            return base, f"{base[:12]} (the merge base of HEAD and {branch})"
    raise SnapshotError("no base to compare with: there is neither origin/main nor main (or no commit in common); name one: model-atlas diff REF")


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
