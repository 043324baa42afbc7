"""coverage: per table and fact field, how many rows state the fact, how many document why it is empty, how many simply lack it.

A fact field is one whose schema says `x-fact`. Rows of kinds that are not models (products, devices,
frameworks) are left out of the models counts; a fact whose schema declares `x-applies-to` (a class, or values
of another field) counts as not applicable for the models it does not apply to; architectures are counted over every model, so a model
without an architecture row is missing all of its architecture facts unless fact_gaps says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.package.descriptor import Package
from pipelines.package.sql import lit, q


@dataclass(frozen=True)
class FieldCoverage:
    table: str
    field: str
    rows: int
    stated: int
    primary: int  # stated and cited to a primary source
    unpublished: int
    not_applicable: int
    unverified: int

    @property
    def missing(self) -> int:
        return self.rows - self.stated - self.unpublished - self.not_applicable - self.unverified


def coverage(con, pkg: Package) -> list[FieldCoverage]:
    """Coverage of every fact field, from the typed tables of a checked connection (typed_<table>)."""
    if not {"models", "citations", "sources", "fact_gaps"} <= set(pkg.tables):
        return []
    kinds = ", ".join(lit(k) for k in pkg.policy.get("non_model_kinds", ["product", "device", "framework"]))
    con.execute(f"CREATE OR REPLACE TEMP VIEW coverage_models AS SELECT model_id FROM typed_models WHERE kind NOT IN ({kinds}) AND model_id IS NOT NULL")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW coverage_primary AS SELECT DISTINCT c.table_name, c.row_id, c.field FROM typed_citations c "
        "JOIN typed_sources s USING (source_id) WHERE s.tier = 'primary'"
    )
    out = []
    for name in ("models", "architectures"):
        if name not in pkg.tables:
            continue
        table = pkg.table(name)
        pk = q(table.primary_key[0])
        for f in (f for f in table.fields if f.fact):
            col = q(f.name)
            applies = _applies(f.x("x-applies-to"))
            rows, stated, primary, unpub, na, unver = con.execute(
                f"SELECT count(*), count(x.{col}), count(x.{col}) FILTER (WHERE p.row_id IS NOT NULL), "
                "count(*) FILTER (WHERE x." + col + f" IS NULL AND g.reason = 'unpublished' AND {applies}), "
                "count(*) FILTER (WHERE x." + col + f" IS NULL AND (g.reason = 'not-applicable' OR NOT ({applies}))), "
                "count(*) FILTER (WHERE x." + col + f" IS NULL AND g.reason = 'unverified' AND {applies}) "
                f"FROM coverage_models m LEFT JOIN {q('typed_' + name)} x ON x.{pk} = m.model_id "
                f"LEFT JOIN coverage_primary p ON p.table_name = {lit(name)} AND p.row_id = m.model_id AND p.field = {lit(f.name)} "
                f"LEFT JOIN (SELECT row_id, arg_min(reason, CASE WHEN field = '*' THEN 1 ELSE 0 END) AS reason FROM typed_fact_gaps "
                f"WHERE table_name = {lit(name)} AND field IN ({lit(f.name)}, '*') GROUP BY row_id) g ON g.row_id = m.model_id"
            ).fetchone()
            out.append(FieldCoverage(name, f.name, rows, stated, primary, unpub, na, unver))
    return out


def _applies(spec) -> str:
    """SQL over the model m: whether a fact applies to it (x-applies-to in the schema); TRUE when undeclared."""
    spec = dict(spec or ())
    if "class" in spec:
        return (
            "EXISTS (SELECT 1 FROM typed_model_classes mc JOIN class_below b ON b.member_class_id = mc.class_id "
            f"WHERE mc.model_id = m.model_id AND b.class_id = {lit(spec['class'])})"
        )
    if "field" in spec:
        values = ", ".join(lit(v) for v in spec.get("in", ()))
        return f"EXISTS (SELECT 1 FROM typed_models a WHERE a.model_id = m.model_id AND a.{q(spec['field'])} IN ({values}))"
    return "TRUE"


def coverage_markdown(rows: list[FieldCoverage]) -> str:
    """The coverage table as Markdown (for NOTES.md and the command)."""
    lines = [
        "| table | field | stated | cited to a primary source | unpublished | not applicable | unverified | missing |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in rows:
        lines.append(f"| {c.table} | {c.field} | {c.stated} | {c.primary} | {c.unpublished} | {c.not_applicable} | {c.unverified} | {c.missing} |")
    if rows:
        lines.append("")
        lines.append(f"Counted over {rows[0].rows} models (families included; products, devices and frameworks left out).")
    return "\n".join(lines) + "\n"


def coverage_csv(rows: list[FieldCoverage]) -> str:
    head = "table,field,rows,stated,primary,unpublished,not_applicable,unverified,missing"
    body = [f"{c.table},{c.field},{c.rows},{c.stated},{c.primary},{c.unpublished},{c.not_applicable},{c.unverified},{c.missing}" for c in rows]
    return "\n".join([head, *body]) + "\n"
