"""validate: load the package, run every check group, return all findings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.findings import Finding
from pipelines.package import Package, load_package


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


def connect_checked(pkg: Package, as_of: date):
    """Load every table into an in-memory DuckDB and run all checks; returns (connection, loaded, findings)."""
    import duckdb

    from pipelines import checks
    from pipelines.tables import read_tables

    loaded, findings = read_tables(pkg)
    findings = list(pkg.findings) + findings
    con = duckdb.connect()
    checks.register_tables(con, loaded)
    findings += checks.check_schema_and_keys(con, pkg, loaded)
    findings += checks.check_row_rules(con, loaded, as_of)
    findings += checks.check_cross_table(con, pkg, loaded, as_of)
    findings += checks.check_staleness(con, pkg, loaded, as_of)
    findings += checks.check_safety(con, pkg, loaded)
    return con, loaded, findings


def validate(root: Path | str = ".", as_of: date | None = None) -> Report:
    """Run every check on the package at root; raises PackageError when the descriptor is unusable."""
    pkg = load_package(root)
    con, loaded, findings = connect_checked(pkg, as_of or date.today())
    con.close()
    return Report(findings, len(loaded), sum(lt.arrow.num_rows for lt in loaded.values()))
