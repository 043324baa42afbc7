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
    sql: str = ""  # the release's expression over the typed row t (and its review state rs); empty: the field as stored

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
    Column("confidence", "string", "Confidence after the row's latest review (high, medium, low; see confidence_levels).", True, "rs.confidence"),
    Column("last_reviewed", "date", "Date of the row's latest review.", True, "rs.last_reviewed"),
    Column("reviewers", "integer", "Number of distinct reviewers who have checked the row.", True, "coalesce(rs.reviewers, 0)"),
    Column("review_status", "string", "ok, due (past the warn-after age) or stale (past the error-after age) at the release's as-of date.", True, "rs.status"),
    Column("stale", "boolean", "True when review_status is stale at the release's as-of date.", True, "coalesce(rs.status = 'stale', FALSE)"),
)
INHERITED_COLUMNS = (
    Column("confidence", "string", "Confidence of the row this row belongs to (its model, or the cited row).", True, "rs.confidence"),
    Column("last_reviewed", "date", "Latest review date of the row this row belongs to.", True, "rs.last_reviewed"),
)


def _month_date(name: str, description: str) -> tuple[Column, Column]:
    """A YYYY-MM-DD or YYYY-MM string becomes a DATE (first of the month) plus its precision."""
    col = f"t.{q(name)}"
    return (
        Column(
            name,
            "date",
            description.split(":")[0] + "; the first day of the month when only the month is published (see " + name + "_precision).",
            True,
            f"CAST(CASE WHEN length({col}) = 7 THEN {col} || '-01' ELSE {col} END AS DATE)",
        ),
        Column(
            name + "_precision",
            "string",
            f"day or month: how precisely {name} is published.",
            True,
            f"CASE WHEN {col} IS NULL THEN NULL WHEN length({col}) = 7 THEN 'month' ELSE 'day' END",
        ),
    )


def _band(spec: dict) -> Column:
    """A column naming the derived class (such as a size band) whose declared range holds a count."""
    src = q(spec["from"])
    sql = (
        f"(SELECT b.class_id FROM derived_bands b WHERE b.facet = {lit(spec['facet'])} AND t.{src} >= coalesce(b.params_min, 0) "
        f"AND (b.params_max IS NULL OR t.{src} < b.params_max))"
    )
    return Column(spec["name"], "string", spec["description"], True, sql)


def release_columns(table: Table) -> list[Column]:
    """The columns of a released table, in order, from its schema: each field (a declared derivation replacing it
    in place, followed by its companion column), then the table's declared derived columns, then its review columns."""
    cols: list[Column] = []
    for f in table.fields:
        if "month" in f.date_precision:
            cols += _month_date(f.name, f.description)
        elif f.type == "list":
            col = f"t.{q(f.name)}"
            cols.append(
                Column(
                    f.name,
                    f.type,
                    f.description,
                    False,
                    f"CASE WHEN {col} IS NULL THEN NULL ELSE list_transform(string_split({col}, {lit(f.delimiter)}), lambda x: trim(x)) END",
                )
            )
        else:
            cols.append(Column(f.name, f.type, f.description))
    for spec in table.ext.get("x-derived-columns", []):
        if spec.get("kind") == "class-band":
            cols.append(_band(spec))
    if table.ext.get("x-derived-rows"):
        cols.append(Column("derived", "boolean", table.ext["x-derived-rows"]["description"], True, "t.__derived"))
    review = dict(table.review_from)
    if review:
        cols += REVIEW_COLUMNS if review.get("table") == table.name else INHERITED_COLUMNS
    return cols


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


LIST_DELIMITER = "|"  # joins a list cell's items in a CSV rendition: the one delimiter schemas/profiles/tableschema.json allows, as in data/


def csv_cell_sql(column: Column, ref: str) -> str:
    """The text a CSV rendition holds for a released column (ref is its SQL reference): exactly the form
    release_table_schema declares, so a Table Schema reader (frictionless) reads back the Parquet value.
    NULL stays NULL (an empty cell); booleans are true/false, dates YYYY-MM-DD, numbers the shortest
    text that reads back to the same double, lists their items joined by LIST_DELIMITER."""
    if column.type == "list":
        return f"array_to_string({ref}, {lit(LIST_DELIMITER)})"
    if column.type == "boolean":
        return f"CASE WHEN {ref} THEN 'true' WHEN NOT {ref} THEN 'false' END"
    if column.type == "date":
        return f"strftime({ref}, '%Y-%m-%d')"
    return f"CAST({ref} AS VARCHAR)"


def release_table_schema(table: Table) -> dict:
    """A Table Schema for the released table as its CSV rendition holds it (the release datapackage.json's
    resources): lists with their delimiter, booleans as true/false, empty cells as missing values, keys."""
    fields = []
    for c in release_columns(table):
        f = {"name": c.name, "type": c.type, "description": c.description}
        if c.type == "list":
            f.update(delimiter=LIST_DELIMITER, itemType="string")
        elif c.type == "boolean":
            f.update(trueValues=["true"], falseValues=["false"])
        fields.append(f)
    schema = {"fields": fields, "missingValues": [""], "primaryKey": list(table.primary_key)}
    if table.foreign_keys:
        schema["foreignKeys"] = [dict(fk) for fk in table.foreign_keys]
    return schema


def inherit_review_state(con, pkg: Package) -> None:
    """Add the review state of rows keyed by the row they take it from (an architectures row: its model's), so a
    citation of such a row carries a confidence too."""
    for name, table in pkg.tables.items():
        review = dict(table.review_from)
        if review.get("table") and review.get("table") != name and list(table.primary_key) == [review.get("key")]:
            con.execute(
                f"INSERT INTO review_state SELECT {lit(name)}, t.{q(review['key'])}, rs.last_reviewed, rs.confidence, rs.status, rs.reviewers "
                f"FROM {q('typed_' + name)} t JOIN review_state rs ON rs.table_name = {lit(review['table'])} AND rs.row_id = t.{q(review['key'])}"
            )


def create_release_views(con, pkg: Package, as_of: date) -> None:
    """release_<table>: typed rows plus the derived columns (and derived rows) their schemas declare, ready to write."""
    status = (
        stale_rows_sql(pkg, as_of)
        or "SELECT NULL::VARCHAR AS table_name, NULL::VARCHAR AS row_id, NULL::DATE AS last_reviewed, NULL::VARCHAR AS confidence, NULL::VARCHAR AS status WHERE FALSE"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE review_state AS SELECT s.table_name, s.row_id, s.last_reviewed, s.confidence, s.status, lr.n_reviewers AS reviewers "
        f"FROM ({status}) s LEFT JOIN latest_reviews lr USING (table_name, row_id)"
    )
    inherit_review_state(con, pkg)
    bands = "SELECT class_id, facet, params_min, params_max FROM typed_classes WHERE membership = 'derived'" if "classes" in pkg.tables else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE derived_bands AS {bands or 'SELECT NULL::VARCHAR AS class_id, NULL::VARCHAR AS facet, NULL::BIGINT AS params_min, NULL::BIGINT AS params_max WHERE FALSE'}"
    )
    for name, table in pkg.tables.items():
        cols = release_columns(table)
        exprs = [f"{c.sql or 't.' + q(c.name)} AS {q(c.name)}" for c in cols]
        review = dict(table.review_from)
        join = ""
        if review.get("table"):
            join = f"LEFT JOIN review_state rs ON rs.table_name = {lit(review['table'])} AND rs.row_id = t.{q(review['key'])}"
        elif review.get("table_field"):
            join = f"LEFT JOIN review_state rs ON rs.table_name = t.{q(review['table_field'])} AND rs.row_id = t.{q(review['key'])}"
        source = f"{q('typed_' + name)} t"
        rows = table.ext.get("x-derived-rows")
        if rows and rows.get("kind") == "class-band":
            # hand-written memberships plus the derived ones: every model whose count lies in a derived class's range
            owner, count = q(rows["key"]), q(rows["from"])
            fields = [q(f.name) for f in table.fields]
            derived_select = ", ".join(
                f"m.{owner}" if f.name == rows["key"] else ("b.class_id" if f.name == rows["class_field"] else f"NULL AS {q(f.name)}") for f in table.fields
            )
            source = (
                f"(SELECT {', '.join(fields)}, FALSE AS __derived FROM {q('typed_' + name)} UNION ALL "
                f"SELECT {derived_select}, TRUE FROM {q('typed_' + rows['table'])} m JOIN derived_bands b ON m.{count} >= coalesce(b.params_min, 0) "
                f"AND (b.params_max IS NULL OR m.{count} < b.params_max)) t"
            )
        order = ", ".join(f"t.{q(k)}" for k in table.primary_key)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q('release_' + name)} AS SELECT {', '.join(exprs)} FROM {source} {join} ORDER BY {order}")
