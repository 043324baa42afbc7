"""The released shape of each table, derived from schemas/ plus the few columns a release computes.

Parquet types, DuckDB DDL and COMMENTs, and the release datapackage.json all come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pipelines.checks.engine import stale_rows_sql
from pipelines.package.descriptor import Field, Package, Table
from pipelines.package.sql import lit, q


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Table Schema type
    description: str
    derived: bool = False

    def duckdb_type(self) -> str:
        return Field(self.name, self.type, "", {}).duckdb_type()

    def arrow_type(self):
        import pyarrow as pa

        return {
            "string": pa.string(),
            "integer": pa.int64(),
            "number": pa.float64(),
            "boolean": pa.bool_(),
            "date": pa.date32(),
            "list": pa.list_(pa.string()),
        }[self.type]


REVIEW_COLUMNS = (
    Column("confidence", "string", "Confidence after the row's latest review (high, medium, low; see confidence_levels).", True),
    Column("last_reviewed", "date", "Date of the row's latest review.", True),
    Column("reviewers", "integer", "Number of distinct reviewers who have checked the row.", True),
    Column("review_status", "string", "ok, due (past the warn-after age) or stale (past the error-after age) at the release's as-of date.", True),
    Column("stale", "boolean", "True when review_status is stale at the release's as-of date.", True),
)
INHERITED_COLUMNS = (
    Column("confidence", "string", "Confidence of the row this link belongs to (its model, or the cited row).", True),
    Column("last_reviewed", "date", "Latest review date of the row this link belongs to.", True),
)

# derived columns per table, replacing (release_date) or adding to the schema's fields
DERIVED: dict[str, tuple[Column, ...]] = {
    "models": (
        Column("release_date", "date", "First public release; the first day of the month when only the month is published (see release_date_precision).", True),
        Column("release_date_precision", "string", "day or month: how precisely release_date is published.", True),
        Column(
            "size_band",
            "string",
            "Size band derived from params_total: small (<1B), medium (1B-10B), large (10B-100B), very-large (>100B); empty when unpublished.",
            True,
        ),
        *REVIEW_COLUMNS,
    ),
    "classes": REVIEW_COLUMNS,
    "model_classes": INHERITED_COLUMNS,
    "model_relations": INHERITED_COLUMNS,
    "citations": INHERITED_COLUMNS,
}


def release_columns(table: Table) -> list[Column]:
    """The columns of a released table, in order: schema fields (derived ones replacing them in place), then new derived columns."""
    derived = {c.name: c for c in DERIVED.get(table.name, ())}
    cols = [derived.pop(f.name) if f.name in derived else Column(f.name, f.type, f.description) for f in table.fields]
    return cols + list(derived.values())


def arrow_schema(table: Table):
    """The Parquet/Arrow schema with table and column descriptions in the metadata."""
    import json

    import pyarrow as pa

    fields = [pa.field(c.name, c.arrow_type(), metadata={"description": c.description}) for c in release_columns(table)]
    meta = {"description": table.description, "title": table.title, "primary_key": json.dumps(list(table.primary_key))}
    return pa.schema(fields, metadata=meta)


def primary_key_ddl(table: Table) -> str:
    return "PRIMARY KEY (" + ", ".join(q(k) for k in table.primary_key) + ")"


def table_ddl(table: Table, pkg: Package, with_foreign_keys: bool = True, with_primary_key: bool = True) -> str:
    """CREATE TABLE with primary and foreign keys, derived from the schema."""
    cols = [f"{q(c.name)} {c.duckdb_type()}" for c in release_columns(table)]
    if table.primary_key and with_primary_key:
        cols.append(primary_key_ddl(table))
    if with_foreign_keys:
        for fk in table.foreign_keys:
            ref = fk["reference"]
            cols.append(
                "FOREIGN KEY ("
                + ", ".join(q(f) for f in fk["fields"])
                + f") REFERENCES {q(ref.get('resource') or table.name)} ("
                + ", ".join(q(f) for f in ref["fields"])
                + ")"
            )
    return f"CREATE TABLE {q(table.name)} (\n  " + ",\n  ".join(cols) + "\n)"


def release_table_schema(table: Table) -> dict:
    """A Table Schema for the released (Parquet) table, for the release datapackage.json."""
    types = {"list": "list"}
    fields = []
    for c in release_columns(table):
        f = {"name": c.name, "type": types.get(c.type, c.type), "description": c.description}
        if c.type == "list":
            f["itemType"] = "string"
        fields.append(f)
    schema = {"fields": fields, "primaryKey": list(table.primary_key)}
    if table.foreign_keys:
        schema["foreignKeys"] = [dict(fk) for fk in table.foreign_keys]
    return schema


SIZE_BANDS = "CASE WHEN params_total IS NULL THEN NULL WHEN params_total < 1000000000 THEN 'small' WHEN params_total < 10000000000 THEN 'medium' WHEN params_total <= 100000000000 THEN 'large' ELSE 'very-large' END"


def create_release_views(con, pkg: Package, as_of: date) -> None:
    """release_<table>: typed rows plus derived columns, ready to write."""
    status = (
        stale_rows_sql(pkg, as_of)
        or "SELECT NULL::VARCHAR AS table_name, NULL::VARCHAR AS row_id, NULL::DATE AS last_reviewed, NULL::VARCHAR AS confidence, NULL::VARCHAR AS status WHERE FALSE"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE review_state AS SELECT s.table_name, s.row_id, s.last_reviewed, s.confidence, s.status, lr.n_reviewers AS reviewers "
        f"FROM ({status}) s LEFT JOIN latest_reviews lr USING (table_name, row_id)"
    )
    for name, table in pkg.tables.items():
        exprs = []
        derived_names = {c.name for c in DERIVED.get(name, ())}
        pk = table.primary_key[0] if table.primary_key else None
        for c in release_columns(table):
            if c.name == "release_date" and name == "models":
                exprs.append("CAST(CASE WHEN length(t.release_date) = 7 THEN t.release_date || '-01' ELSE t.release_date END AS DATE) AS release_date")
            elif c.name == "release_date_precision":
                exprs.append("CASE WHEN t.release_date IS NULL THEN NULL WHEN length(t.release_date) = 7 THEN 'month' ELSE 'day' END AS release_date_precision")
            elif c.name == "size_band":
                exprs.append(SIZE_BANDS.replace("params_total", "t.params_total") + " AS size_band")
            elif c.name in ("confidence", "last_reviewed") and c.name in derived_names:
                exprs.append(f"rs.{q(c.name)} AS {q(c.name)}")
            elif c.name == "reviewers":
                exprs.append("coalesce(rs.reviewers, 0) AS reviewers")
            elif c.name == "review_status":
                exprs.append("rs.status AS review_status")
            elif c.name == "stale":
                exprs.append("coalesce(rs.status = 'stale', FALSE) AS stale")
            elif c.type == "list":
                exprs.append(
                    f"CASE WHEN t.{q(c.name)} IS NULL THEN NULL ELSE list_transform(string_split(t.{q(c.name)}, '|'), lambda x: trim(x)) END AS {q(c.name)}"
                )
            else:
                exprs.append(f"t.{q(c.name)}")
        join = ""
        if name in ("models", "classes"):
            join = f"LEFT JOIN review_state rs ON rs.table_name = {lit(name)} AND rs.row_id = t.{q(pk)}"
        elif name in ("model_classes", "model_relations"):
            join = "LEFT JOIN review_state rs ON rs.table_name = 'models' AND rs.row_id = t.model_id"
        elif name == "citations":
            join = "LEFT JOIN review_state rs ON rs.table_name = t.table_name AND rs.row_id = t.row_id"
        order = ", ".join(f"t.{q(k)}" for k in table.primary_key)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q('release_' + name)} AS SELECT {', '.join(exprs)} FROM {q('typed_' + name)} t {join} ORDER BY {order}")
