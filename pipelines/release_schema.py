"""The released shape of each table, derived from schemas/ plus the few columns a release computes.

Parquet types, DuckDB DDL and COMMENTs, and the release datapackage.json all come from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.package import Field, Package, Table


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
    return "PRIMARY KEY (" + ", ".join(f'"{k}"' for k in table.primary_key) + ")"


def table_ddl(table: Table, pkg: Package, with_foreign_keys: bool = True, with_primary_key: bool = True) -> str:
    """CREATE TABLE with primary and foreign keys, derived from the schema."""
    cols = [f'"{c.name}" {c.duckdb_type()}' for c in release_columns(table)]
    if table.primary_key and with_primary_key:
        cols.append(primary_key_ddl(table))
    if with_foreign_keys:
        for fk in table.foreign_keys:
            ref = fk["reference"]
            cols.append(
                "FOREIGN KEY ("
                + ", ".join(f'"{f}"' for f in fk["fields"])
                + f') REFERENCES "{ref.get("resource") or table.name}" ('
                + ", ".join(f'"{f}"' for f in ref["fields"])
                + ")"
            )
    return f'CREATE TABLE "{table.name}" (\n  ' + ",\n  ".join(cols) + "\n)"


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
