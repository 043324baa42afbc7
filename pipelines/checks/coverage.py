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
        if name in pkg.tables:
            out += _table_coverage(con, pkg, name)
    return out


def _table_coverage(con, pkg: Package, name: str) -> list[FieldCoverage]:
    """One statement per table: each model's row widened to (stated, applies) per fact field, unpivoted
    to one row per model and field, joined to its primary citation and its documented gap."""
    table = pkg.table(name)
    facts = [f for f in table.fields if f.fact]
    if not facts:
        return []
    pk = q(table.primary_key[0])
    wide = ", ".join(f"(x.{q(f.name)} IS NOT NULL) AS {q('s' + str(i))}, ({_applies(f.x('x-applies-to'))}) AS {q('a' + str(i))}" for i, f in enumerate(facts))
    pairs = ", ".join(f"({q('s' + str(i))}, {q('a' + str(i))}) AS {q(f.name)}" for i, f in enumerate(facts))
    rows = con.execute(
        f"WITH w AS (SELECT m.model_id, {wide} FROM coverage_models m LEFT JOIN {q('typed_' + name)} x ON x.{pk} = m.model_id), "
        f"u AS (UNPIVOT w ON {pairs} INTO NAME fi VALUE stated, applies), "
        f"g AS (SELECT row_id, field, reason FROM typed_fact_gaps WHERE table_name = {lit(name)}), "
        f"p AS (SELECT DISTINCT row_id, field FROM coverage_primary WHERE table_name = {lit(name)}), "
        "j AS (SELECT u.fi, u.stated, u.applies, p.row_id IS NOT NULL AS primary_cited, coalesce(gf.reason, ga.reason) AS reason FROM u "
        "LEFT JOIN p ON p.row_id = u.model_id AND p.field = u.fi "
        "LEFT JOIN g gf ON gf.row_id = u.model_id AND gf.field = u.fi "
        "LEFT JOIN g ga ON ga.row_id = u.model_id AND ga.field = '*') "
        "SELECT fi, count(*), count(*) FILTER (WHERE stated), count(*) FILTER (WHERE stated AND primary_cited), "
        "count(*) FILTER (WHERE NOT stated AND reason = 'unpublished' AND applies), "
        "count(*) FILTER (WHERE NOT stated AND (reason = 'not-applicable' OR NOT applies)), "
        "count(*) FILTER (WHERE NOT stated AND reason = 'unverified' AND applies) FROM j GROUP BY fi"
    ).fetchall()
    got = {fi: rest for fi, *rest in rows}
    return [FieldCoverage(name, f.name, *got.get(f.name, (0, 0, 0, 0, 0, 0))) for f in facts]


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
