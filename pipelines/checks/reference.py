"""The reference engine: frictionless-py for Table Schema and keys, pandera for the row rules.

It is slow and row-by-row, and exists to keep the fast engine honest: the differential tests run
both on the same fixtures and require the same findings. `model-atlas validate --engine reference`
runs it from the command line.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipelines.checks.rules import ROW_RULES
from pipelines.package.descriptor import load_package
from pipelines.package.findings import RULES, Finding

FRICTIONLESS_TO_CODES: dict[str, set[str]] = {}
for _code, _rule in RULES.items():
    if _rule.frictionless:
        FRICTIONLESS_TO_CODES.setdefault(_rule.frictionless, set()).add(_code)


# frictionless reports these for the row as a whole (no field) ...
ROW_LEVEL = {"primary-key", "foreign-key", "extra-cell", "blank-row"}
# ... and these for the header, as row 0 (we point at line 1, where an editor shows the header)
HEADER_LEVEL = {"incorrect-label", "duplicate-label", "missing-label", "extra-label", "blank-label"}


def comparable(file: str, line: int, column: str, kind: str) -> tuple:
    """Normalise only where the two engines locate the same problem differently, never its kind."""
    if kind in ROW_LEVEL:
        column = ""
    if kind in HEADER_LEVEL:
        line = 0
    return (file, line, column, kind)


def fast_as_frictionless(findings) -> set[tuple]:
    """The fast engine's findings that frictionless also implements, in comparable form."""
    out = set()
    for f in findings:
        kind = RULES[f.code].frictionless if f.code in RULES else None
        if kind:
            out.add(comparable(f.file, f.line, f.column, kind))
    return out


def frictionless_findings(root: Path | str) -> list[tuple[str, int, str, str]]:
    """(file, row number, field, frictionless error type) for every error frictionless reports."""
    from frictionless import Package, system

    root = Path(root)
    with system.use_context(trusted=False):
        package = Package(str(root / "datapackage.json"), basepath=str(root))
        report = package.validate()
    sole_keys = {(t.path, t.primary_key[0]) for t in load_package(root).tables.values() if len(t.primary_key) == 1}
    out = []
    for task in report.tasks:
        path = task.place or ""
        file = Path(path).relative_to(root.resolve()).as_posix() if Path(path).is_absolute() else path
        for error in task.errors:
            field = getattr(error, "field_name", "") or ""
            if error.type == "unique-error" and (file, field) in sole_keys:
                continue  # frictionless reports a repeated single-column primary key twice (also as primary-key); we report it once
            out.append((file, getattr(error, "row_number", 0) or 0, field, error.type))
    return out


def pandera_findings(root: Path | str, as_of: date) -> list[Finding]:
    """Run the declared row rules through pandera on frictionless-typed rows (lazy: all failures)."""
    import pandas as pd
    import pandera.pandas as pa
    from frictionless import Package, system

    pkg = load_package(root)
    with system.use_context(trusted=False):
        fpackage = Package(str(Path(root) / "datapackage.json"), basepath=str(root))
    findings = []
    by_table: dict[str, list] = {}
    for rule in ROW_RULES:
        by_table.setdefault(rule.table, []).append(rule)
    for name, rules in by_table.items():
        table = pkg.table(name)
        with system.use_context(trusted=False), fpackage.get_resource(name) as resource:
            records = [dict(row, __line=row.row_number) for row in resource.row_stream]
        df = pd.DataFrame(records, columns=table.field_names + ["__line"]).astype(object)
        df = df.where(df.notna(), None)
        for col in df.columns:
            if table.field_names.count(col) and table.field(col).type == "integer":
                df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        checks = [pa.Check(lambda d, r=rule: ~r.frame(d, as_of).fillna(False).astype(bool), name=f"{i}") for i, rule in enumerate(rules)]
        schema = pa.DataFrameSchema(checks=checks)
        try:
            schema.validate(df, lazy=True)
        except pa.errors.SchemaErrors as exc:
            cases = exc.failure_cases
            for _, case in cases.iterrows():
                if case["index"] is None or pd.isna(case["index"]):
                    continue
                rule = rules[int(case["check"])]
                row = df.loc[int(case["index"])]
                values = {k: ("" if v is None or (not isinstance(v, str) and pd.isna(v)) else v) for k, v in row.items()}
                findings.append(Finding(table.path, int(row["__line"]), rule.column, rule.code, rule.message.format(as_of=as_of.isoformat(), **values)))
    # pandera reports one failure case per failing column of a dataframe-level check; keep one per row
    return sorted(set(findings), key=lambda f: f.sort_key)
