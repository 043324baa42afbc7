"""validate: load the package, run every check group, return all findings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.package.clock import utc_today
from pipelines.package.descriptor import Package, load_package
from pipelines.package.findings import Finding, cap_findings
from pipelines.package.sql import q


@dataclass
class Report:
    findings: list[Finding]
    tables: int
    rows: int

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def checked(self) -> str:
        return f"{self.tables} tables, {self.rows} rows"


def connect_checked(pkg: Package, as_of: date, directories=(), memory_limit: str | None = None):
    """Load every table into a locked in-memory DuckDB and run all checks; returns (connection, loaded, findings).

    The connection may read the package's CSV files and the directories named (a release being
    written), nothing else."""
    from pipelines.checks import engine as checks
    from pipelines.checks.taxonomy import check_taxonomy
    from pipelines.package.tables import connect_package, read_tables

    con = connect_package(pkg, directories, memory_limit)
    loaded, findings = read_tables(pkg, con)
    findings = list(pkg.findings) + findings
    checks.register_tables(con, loaded)
    findings += checks.check_schema_and_keys(con, pkg, loaded)
    findings += checks.check_row_rules(con, loaded, as_of)
    findings += checks.check_cross_table(con, pkg, loaded, as_of)
    findings += check_taxonomy(con, pkg, loaded, as_of)
    findings += checks.check_staleness(con, pkg, loaded, as_of)
    findings += checks.check_safety(con, pkg, loaded)
    return con, loaded, cap_findings(one_finding_per_cell_placeholder(findings + checks.check_placeholders(con, loaded)))


def one_finding_per_cell_placeholder(findings: list[Finding]) -> list[Finding]:
    """A cell still holding a placeholder is one defect: drop the pattern, key or safety findings it also causes."""
    placeholder_cells = {(f.file, f.line, f.column) for f in findings if f.code == "placeholder"}
    return [f for f in findings if f.code == "placeholder" or (f.file, f.line, f.column) not in placeholder_cells]


def touched_rows(con, pkg: Package, ref: str) -> set[tuple[str, str]]:
    """(table, row_id) of reviewable rows that changed since ref, directly or through their links."""
    from pipelines.package.snapshot import Snapshot, diff_snapshots, load_git_snapshot

    for name in pkg.tables:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q('new_' + name)} AS SELECT * EXCLUDE (__line) FROM {q('typed_' + name)}")
    new = Snapshot("working tree", {n: {"key": list(t.primary_key), "columns": {f.name: f.type for f in t.fields}} for n, t in pkg.tables.items()})
    old = load_git_snapshot(con, pkg.root, ref, "old")
    touched = set()
    for d in diff_snapshots(con, old, new):
        keys = set(d.added) | {c[0] for c in d.changed}
        if d.table in ("models", "classes"):
            touched |= {(d.table, k) for k in keys}
        elif d.table in ("model_classes", "model_relations"):
            touched |= {("models", k.split("/")[0]) for k in keys}
        elif d.table == "citations":  # a new or changed citation touches the cited row
            touched |= {(k.split("/")[0], k.split("/")[1]) for k in keys}
    return touched


def validate(root: Path | str = ".", as_of: date | None = None, changed_since: str | None = None) -> Report:
    """Run every check on the package at root; raises PackageError when the descriptor is unusable.

    as_of defaults to today's date in UTC (pipelines.package.clock).

    With changed_since (a git ref), staleness is enforced only on rows the change touches; other
    stale rows are reported as warnings so nobody is blocked by someone else's review backlog.
    """
    from pipelines.package.snapshot import SnapshotError

    pkg = load_package(root)
    con, loaded, findings = connect_checked(pkg, as_of or utc_today())
    if changed_since:
        try:
            touched = touched_rows(con, pkg, changed_since)
        except SnapshotError as exc:
            raise ValueError(str(exc)) from None
        files = {lt.file: name for name, lt in loaded.items()}
        pk_line = {}
        for name in ("models", "classes"):
            pk = pkg.table(name).primary_key[0]
            pk_line.update({(name, line): key for line, key in con.execute(f"SELECT __line, {q(pk)} FROM {q('typed_' + name)}").fetchall()})
        findings = [
            Finding(f.file, f.line, f.column, f.code, f.message + " (not touched by this change)", f.fix, "warning")
            if f.code == "stale" and (files.get(f.file), pk_line.get((files.get(f.file), f.line))) not in touched
            else f
            for f in findings
        ]
    con.close()
    return Report(findings, len(loaded), sum(lt.rows for lt in loaded.values()))
