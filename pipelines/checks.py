"""The fast engine: every check group as vectorised SQL in DuckDB, all findings collected in one run.

Stages read top to bottom: register the loaded tables, derive typed views from the schemas, then run
schema, key, row, cross-table, staleness and safety checks. Each check returns Finding objects.
"""

from __future__ import annotations

import json
from datetime import date

from pipelines.findings import Finding, did_you_mean
from pipelines.package import Field, Package, Table
from pipelines.rules import ROW_RULES
from pipelines.tables import LINE, LoadedTable

TRUE_VALUES = ("true", "True", "TRUE", "1")
FALSE_VALUES = ("false", "False", "FALSE", "0")
INTEGER_RE = r"\s*[+-]?[0-9]+\s*"
DATE_RE = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
CONTROL_RE = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\x{202A}-\x{202E}\x{2066}-\x{2069}\x{200E}\x{200F}]"
TYPE_HINT = {
    "integer": "write whole digits only, for example 7000000000",
    "date": "write an ISO date, YYYY-MM-DD",
    "boolean": "write true or false",
    "number": "write a number such as 1.5",
}


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value) -> str:
    """An SQL literal for a str, int, bool or date taken from the schema or policy."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def cast_sql(field: Field, col: str) -> tuple[str, str]:
    """(is-valid expression, typed expression) for a raw VARCHAR column, with frictionless semantics."""
    if field.type == "integer":
        ok = f"(regexp_full_match({col}, {lit(INTEGER_RE)}) AND TRY_CAST(trim({col}) AS HUGEINT) IS NOT NULL)"
        return ok, f"TRY_CAST(trim({col}) AS BIGINT)"
    if field.type == "number":
        return f"(TRY_CAST({col} AS DOUBLE) IS NOT NULL)", f"TRY_CAST({col} AS DOUBLE)"
    if field.type == "boolean":
        trues = ", ".join(lit(v) for v in TRUE_VALUES)
        falses = ", ".join(lit(v) for v in FALSE_VALUES)
        return f"({col} IN ({trues}, {falses}))", f"CASE WHEN {col} IN ({trues}) THEN TRUE WHEN {col} IN ({falses}) THEN FALSE END"
    if field.type == "date":
        ok = f"(regexp_full_match({col}, {lit(DATE_RE)}) AND TRY_STRPTIME({col}, '%Y-%m-%d') IS NOT NULL)"
        return ok, f"CASE WHEN {ok} THEN CAST(TRY_STRPTIME({col}, '%Y-%m-%d') AS DATE) END"
    return "TRUE", col


def register_tables(con, loaded: dict[str, LoadedTable], prefix: str = "") -> None:
    """Register raw string tables as raw_<name> and derive typed views typed_<name> from the schemas."""
    for name, lt in loaded.items():
        con.register(f"{prefix}raw_{name}", lt.arrow)
        cols = [q(LINE)]
        for f in lt.table.fields:
            _, typed = cast_sql(f, q(f.name))
            cols.append(f"{typed} AS {q(f.name)}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(prefix + 'typed_' + name)} AS SELECT {', '.join(cols)} FROM {q(prefix + 'raw_' + name)}")


def _run(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def field_check_sql(table: Table) -> list[str]:
    """One SELECT per cell rule: (line, column, code, value, detail)."""
    raw = q("raw_" + table.name)
    parts = []
    for f in table.fields:
        col = q(f.name)
        ok, typed = cast_sql(f, col)
        name = lit(f.name)
        c = f.constraints

        def sel(code, where, detail="NULL", name=name, col=col):
            parts.append(f"SELECT {q(LINE)}, {name}, {lit(code)}, {col}, {detail} FROM {raw} WHERE {where}")

        if f.type not in ("string", "list"):
            sel("type", f"{col} IS NOT NULL AND NOT {ok}")
        present = f"{col} IS NOT NULL AND {ok}"
        if c.get("required"):
            sel("required", f"{col} IS NULL")
        if "enum" in c:
            sel("enum", f"{present} AND {col} NOT IN ({', '.join(lit(v) for v in c['enum'])})")
        if "pattern" in c:
            sel("pattern", f"{present} AND NOT regexp_full_match({col}, {lit(c['pattern'])})")
        if "minLength" in c:
            sel("min-length", f"{present} AND length({col}) < {int(c['minLength'])}", f"CAST(length({col}) AS VARCHAR)")
        if "maxLength" in c:
            sel("max-length", f"{present} AND length({col}) > {int(c['maxLength'])}", f"CAST(length({col}) AS VARCHAR)")
        if "minimum" in c:
            sel("minimum", f"{present} AND {typed} < {lit(c['minimum'])}")
        if "maximum" in c:
            sel("maximum", f"{present} AND {typed} > {lit(c['maximum'])}")
        if c.get("unique"):
            parts.append(
                f"SELECT {q(LINE)}, {name}, 'unique', v, CAST(first_line AS VARCHAR) FROM ("
                f"SELECT {q(LINE)}, {col} AS v, {typed} AS k, row_number() OVER w AS n, first({q(LINE)}) OVER w AS first_line "
                f"FROM {raw} WHERE {present} WINDOW w AS (PARTITION BY {typed} ORDER BY {q(LINE)})) WHERE n > 1"
            )
    return parts


def key_check_sql(table: Table, tables: dict[str, Table]) -> list[str]:
    """Primary key duplicates and unresolved foreign keys, on typed values."""
    typed = q("typed_" + table.name)
    parts = []
    pk = table.primary_key
    if pk:
        keys = ", ".join(q(k) for k in pk)
        shown = " || '/' || ".join(f"coalesce(CAST({q(k)} AS VARCHAR), '')" for k in pk)
        all_null = " AND ".join(f"{q(k)} IS NULL" for k in pk)
        parts.append(
            f"SELECT {q(LINE)}, {lit(pk[0])}, 'primary-key', {shown}, CAST(first_line AS VARCHAR) FROM ("
            f"SELECT *, row_number() OVER w AS n, first({q(LINE)}) OVER w AS first_line FROM {typed} "
            f"WHERE NOT ({all_null}) WINDOW w AS (PARTITION BY {keys} ORDER BY {q(LINE)})) WHERE n > 1"
        )
        parts.append(f"SELECT {q(LINE)}, {lit(pk[0])}, 'primary-key', NULL, 'all-null' FROM {typed} WHERE {all_null}")
    for fk in table.foreign_keys:
        fields = fk["fields"] if isinstance(fk["fields"], list) else [fk["fields"]]
        ref = fk["reference"]
        ref_table = ref.get("resource") or table.name
        ref_fields = ref["fields"] if isinstance(ref["fields"], list) else [ref["fields"]]
        if ref_table not in tables:
            continue
        cond = " AND ".join(f"t.{q(a)} = r.{q(b)}" for a, b in zip(fields, ref_fields, strict=True))
        not_all_null = " OR ".join(f"t.{q(a)} IS NOT NULL" for a in fields)
        shown = " || '/' || ".join(f"coalesce(CAST(t.{q(a)} AS VARCHAR), '')" for a in fields)
        parts.append(
            f"SELECT t.{q(LINE)}, {lit(fields[0])}, 'foreign-key', {shown}, {lit(ref_table + '.' + ','.join(ref_fields))} "
            f"FROM {typed} t ANTI JOIN {q('typed_' + ref_table)} r ON {cond} WHERE {not_all_null}"
        )
    return parts


def _describe(table: Table, column: str, code: str, value, detail) -> str:
    """The plain sentence for a schema or key finding."""
    try:
        f = table.field(column)
    except KeyError:
        f = None
    shown = f'"{value}"'
    if code == "type":
        return f"{shown} is not a valid {f.type} for {column} ({TYPE_HINT.get(f.type, '')})"
    if code == "required":
        return f"{column} is required but the cell is empty"
    if code == "enum":
        allowed = f.constraints["enum"]
        return f"{shown} is not an allowed {column}{did_you_mean(value, allowed)}; allowed: {', '.join(map(str, allowed))}"
    if code == "pattern":
        return f"{shown} does not match the pattern of {column}: {f.constraints['pattern']}"
    if code == "min-length":
        return f"{column} has {detail} characters; at least {f.constraints['minLength']} are required"
    if code == "max-length":
        return f"{column} has {detail} characters; at most {f.constraints['maxLength']} are allowed"
    if code == "minimum":
        return f"{shown} is below the minimum {f.constraints['minimum']} of {column}"
    if code == "maximum":
        return f"{shown} is above the maximum {f.constraints['maximum']} of {column}"
    if code == "unique":
        return f"{shown} repeats the {column} of line {detail}"
    if code == "primary-key":
        if detail == "all-null":
            return f"the key ({', '.join(table.primary_key)}) is empty"
        return f"the key {shown} repeats the row at line {detail}"
    return f"{shown}: {code}"


def check_schema_and_keys(con, pkg: Package, loaded: dict[str, LoadedTable]) -> list[Finding]:
    """Table Schema cell rules, unique, primary and foreign keys for every table."""
    findings = []
    for lt in loaded.values():
        table = lt.table
        parts = field_check_sql(table) + key_check_sql(table, pkg.tables)
        if not parts:
            continue
        rows = _run(con, " UNION ALL ".join(parts))
        fk_targets: dict[str, list] = {}
        for line, column, code, value, detail in rows:
            if code == "foreign-key":
                if detail not in fk_targets:
                    ref_table, ref_fields = detail.split(".", 1)
                    cols = " || '/' || ".join(f"CAST({q(c)} AS VARCHAR)" for c in ref_fields.split(","))
                    fk_targets[detail] = [r[0] for r in _run(con, f"SELECT DISTINCT {cols} FROM {q('typed_' + ref_table)} WHERE {cols} IS NOT NULL")]
                ref_table, ref_fields = detail.split(".", 1)
                msg = f'"{value}" is not a {ref_fields} in {ref_table}{did_you_mean(value, fk_targets[detail])}'
            else:
                msg = _describe(table, column, code, value, detail)
            findings.append(Finding(lt.file, line, column, code, msg))
    return findings


def check_row_rules(con, loaded: dict[str, LoadedTable], as_of: date) -> list[Finding]:
    """The declared row rules (pipelines/rules.py), compiled to SQL."""
    findings = []
    for rule in ROW_RULES:
        if rule.table not in loaded:
            continue
        lt = loaded[rule.table]
        sql = rule.sql.replace(":as_of", lit(as_of))
        for line, row_json in _run(con, f"SELECT {q(LINE)}, to_json(t) FROM {q('typed_' + rule.table)} t WHERE {sql}"):
            values = json.loads(row_json)
            findings.append(Finding(lt.file, line, rule.column, rule.code, rule.message.format(**values)))
    return findings


def _latest_reviews_sql() -> str:
    return (
        "SELECT table_name, row_id, reviewed_on AS last_reviewed, confidence, reviewer, n_reviewers FROM ("
        "SELECT *, row_number() OVER (PARTITION BY table_name, row_id ORDER BY reviewed_on DESC, review_id DESC) AS k, "
        "count(DISTINCT reviewer) OVER (PARTITION BY table_name, row_id) AS n_reviewers "
        "FROM typed_reviews WHERE table_name IS NOT NULL AND row_id IS NOT NULL AND reviewed_on IS NOT NULL) WHERE k = 1"
    )


def reviewable_tables(pkg: Package) -> list[str]:
    """Tables whose rows are reviewed: the enum of reviews.table_name (the schema is the source)."""
    if "reviews" not in pkg.tables:
        return []
    return [t for t in pkg.table("reviews").field("table_name").enum or [] if t in pkg.tables]


def fact_fields(table: Table) -> list[str]:
    """Fields marked x-fact in the schema: each value needs a primary-source citation."""
    return [f.name for f in table.fields if f.fact]


def check_cross_table(con, pkg: Package, loaded: dict[str, LoadedTable], as_of: date) -> list[Finding]:
    """Rules that join tables: polymorphic references, coverage, citations, cycles, reviews."""
    needed = {"models", "classes", "model_classes", "sources", "citations", "reviews"}
    if not needed <= set(loaded):
        return []
    findings: list[Finding] = []
    policy = pkg.policy
    file = {n: lt.file for n, lt in loaded.items()}

    def emit(table: str, sql: str, code: str, column: str, message: str):
        for row in _run(con, sql):
            line, values = row[0], row[1:]
            findings.append(Finding(file[table], line, column, code, message.format(*values)))

    reviewable = reviewable_tables(pkg)
    cited = [t for t in pkg.table("citations").field("table_name").enum or [] if t in pkg.tables]
    for holder in ("citations", "reviews"):
        targets = cited if holder == "citations" else reviewable
        for target in targets:
            pk = pkg.table(target).primary_key[0]
            emit(
                holder,
                f"SELECT h.{q(LINE)}, h.row_id FROM typed_{holder} h ANTI JOIN {q('typed_' + target)} t ON t.{q(pk)} = h.row_id "
                f"WHERE h.table_name = {lit(target)} AND h.row_id IS NOT NULL",
                "row-reference",
                "row_id",
                '"{}" is not a ' + pk + " in " + target,
            )
    pairs = ", ".join(f"({lit(t)}, {lit(f.name)})" for t in cited for f in pkg.table(t).fields)
    emit(
        "citations",
        f"SELECT c.{q(LINE)}, c.field, c.table_name FROM typed_citations c WHERE c.field IS NOT NULL AND c.field <> '*' "
        f"AND c.table_name IS NOT NULL AND (c.table_name, c.field) NOT IN (SELECT * FROM (VALUES {pairs}))",
        "unknown-field",
        "field",
        '"{}" is not a column of {}',
    )

    product_kinds = ", ".join(lit(k) for k in policy.get("non_model_kinds", ["product", "device", "framework"]))
    emit(
        "models",
        f"SELECT m.{q(LINE)}, m.model_id FROM typed_models m ANTI JOIN typed_model_classes mc ON mc.model_id = m.model_id "
        f"WHERE m.kind NOT IN ({product_kinds}) AND m.model_id IS NOT NULL",
        "unclassified-model",
        "model_id",
        "{} belongs to no class",
    )
    emit(
        "model_classes",
        f"SELECT mc.{q(LINE)}, mc.model_id, m.kind FROM typed_model_classes mc JOIN typed_models m USING (model_id) WHERE m.kind IN ({product_kinds})",
        "product-in-class",
        "model_id",
        "{} is a {}, not a model, so it cannot belong to a model class",
    )
    sparse = policy.get("sparse_class", "mixture-of-experts")
    emit(
        "models",
        f"SELECT m.{q(LINE)}, m.model_id FROM typed_models m WHERE m.params_active IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM typed_model_classes mc WHERE mc.model_id = m.model_id AND mc.class_id = {lit(sparse)})",
        "active-params-dense",
        "params_active",
        "{} has params_active but is not in the " + sparse + " class",
    )

    for t in cited:
        table = pkg.table(t)
        pk = table.primary_key[0]
        for fname in fact_fields(table):
            emit(
                t,
                f"SELECT x.{q(LINE)}, x.{q(pk)} FROM {q('typed_' + t)} x WHERE x.{q(fname)} IS NOT NULL AND NOT EXISTS ("
                f"SELECT 1 FROM typed_citations c JOIN typed_sources s USING (source_id) WHERE c.table_name = {lit(t)} "
                f"AND c.row_id = x.{q(pk)} AND c.field = {lit(fname)} AND s.tier = 'primary')",
                "uncited-fact",
                fname,
                "{} states " + fname + " without a citation to a primary source",
            )

    emit(
        "classes",
        "WITH RECURSIVE up(class_id, ancestor) AS (SELECT class_id, parent_class_id FROM typed_classes WHERE parent_class_id IS NOT NULL "
        "UNION SELECT up.class_id, c.parent_class_id FROM up JOIN typed_classes c ON c.class_id = up.ancestor WHERE c.parent_class_id IS NOT NULL) "
        "SELECT c.__line, c.class_id FROM typed_classes c WHERE c.class_id IN (SELECT class_id FROM up WHERE class_id = ancestor)",
        "class-cycle",
        "parent_class_id",
        "{} is its own ancestor: the class tree has a cycle",
    )

    latest = _latest_reviews_sql()
    min_reviewers = policy.get("reviews", {}).get("min_reviewers", {})
    for t in reviewable:
        pk = pkg.table(t).primary_key[0]
        emit(
            t,
            f"SELECT x.{q(LINE)}, x.{q(pk)} FROM {q('typed_' + t)} x WHERE x.{q(pk)} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM typed_reviews r WHERE r.table_name = {lit(t)} AND r.row_id = x.{q(pk)})",
            "unreviewed",
            pk,
            "{} has never been reviewed",
        )
        emit(
            t,
            f"SELECT x.{q(LINE)}, x.{q(pk)} FROM {q('typed_' + t)} x JOIN ({latest}) l ON l.table_name = {lit(t)} AND l.row_id = x.{q(pk)} "
            f"WHERE l.confidence = 'high' AND NOT EXISTS (SELECT 1 FROM typed_citations c JOIN typed_sources s USING (source_id) "
            f"WHERE c.table_name = {lit(t)} AND c.row_id = x.{q(pk)} AND s.tier = 'primary')",
            "high-needs-primary",
            pk,
            "{} is rated high but cites no primary source",
        )
        for level, need in min_reviewers.items():
            emit(
                t,
                f"SELECT x.{q(LINE)}, x.{q(pk)}, l.n_reviewers FROM {q('typed_' + t)} x JOIN ({latest}) l ON l.table_name = {lit(t)} "
                f"AND l.row_id = x.{q(pk)} WHERE l.confidence = {lit(level)} AND l.n_reviewers < {int(need)}",
                "too-few-reviewers",
                pk,
                "{} is rated " + level + " after {} distinct reviewer(s); the policy asks for " + str(int(need)),
            )
    emit(
        "reviews",
        "SELECT r.__line, r.reviewed_on, m.release_date FROM typed_reviews r JOIN typed_models m ON r.table_name = 'models' "
        "AND r.row_id = m.model_id WHERE m.release_date IS NOT NULL AND r.reviewed_on IS NOT NULL "
        "AND substr(strftime(r.reviewed_on, '%Y-%m-%d'), 1, length(m.release_date)) < m.release_date",
        "review-before-publication",
        "reviewed_on",
        "reviewed_on {} is before the model's release {}",
    )
    return findings


def staleness_policy(pkg: Package, table: str, confidence: str) -> dict:
    """warn_after_days / error_after_days for a table and confidence level, from datapackage.json."""
    stale = pkg.policy.get("staleness", {})
    return stale.get(table, {}).get(confidence) or stale.get("default", {}).get(confidence) or {}


def stale_rows_sql(pkg: Package, as_of: date) -> str | None:
    """One row per reviewed row with its last review, age and status (ok, due, stale) at as_of."""
    selects = []
    latest = _latest_reviews_sql()
    for t in reviewable_tables(pkg):
        pk = pkg.table(t).primary_key[0]
        rules = []
        for level in ("high", "medium", "low"):
            p = staleness_policy(pkg, t, level)
            if p:
                rules.append(f"({lit(level)}, {int(p['warn_after_days'])}, {int(p['error_after_days'])})")
        if not rules:
            continue
        selects.append(
            f"SELECT {lit(t)} AS table_name, x.{q(pk)} AS row_id, x.{q(LINE)} AS line, l.last_reviewed, l.confidence, l.reviewer, "
            f"date_diff('day', l.last_reviewed, {lit(as_of)}) AS age_days, p.warn, p.err, "
            f"CASE WHEN date_diff('day', l.last_reviewed, {lit(as_of)}) > p.err THEN 'stale' "
            f"WHEN date_diff('day', l.last_reviewed, {lit(as_of)}) > p.warn THEN 'due' ELSE 'ok' END AS status "
            f"FROM {q('typed_' + t)} x JOIN ({latest}) l ON l.table_name = {lit(t)} AND l.row_id = x.{q(pk)} "
            f"JOIN (VALUES {', '.join(rules)}) p(level, warn, err) ON p.level = l.confidence"
        )
    return " UNION ALL ".join(selects) if selects else None


def check_staleness(con, pkg: Package, loaded: dict[str, LoadedTable], as_of: date) -> list[Finding]:
    """Rows whose last review is older than the policy allows at the as-of date."""
    if "reviews" not in loaded:
        return []
    sql = stale_rows_sql(pkg, as_of)
    if not sql:
        return []
    findings = []
    for t, row_id, line, last, conf, reviewer, age, warn, err, status in _run(con, f"SELECT * FROM ({sql}) WHERE status <> 'ok'"):
        code = "stale" if status == "stale" else "review-due"
        limit = err if status == "stale" else warn
        pk = pkg.table(t).primary_key[0]
        findings.append(
            Finding(
                loaded[t].file,
                line,
                pk,
                code,
                f"{row_id} was last reviewed on {last} by {reviewer} ({age} days before {as_of}); {conf}-confidence rows are due after {limit} days",
            )
        )
    return findings


def check_safety(con, pkg: Package, loaded: dict[str, LoadedTable]) -> list[Finding]:
    """Formula injection, control and bidi characters, oversize cells, unsafe URLs."""
    limits = pkg.policy.get("limits", {})
    cell_chars = int(limits.get("cell_chars", 2000))
    findings = []
    parts = []
    for name, lt in loaded.items():
        if not lt.table.fields:
            continue
        # one scan per table: every non-empty cell as (line, column, value), then each rule once
        cells = f"(UNPIVOT raw_{name} ON COLUMNS(* EXCLUDE ({q(LINE)})) INTO NAME col VALUE v)"
        parts.append(
            f"SELECT {lit(name)}, {q(LINE)}, col, code, v FROM (SELECT {q(LINE)}, col, v, CASE "
            f"WHEN regexp_matches(v, {lit(CONTROL_RE)}) THEN 'control-char' "
            f"WHEN regexp_matches(v, '^[=+\\-@\\t\\r]') AND TRY_CAST(v AS DOUBLE) IS NULL THEN 'formula' "
            f"WHEN regexp_matches(v, '^\\s*(?i:javascript|data|file|vbscript):') OR regexp_matches(v, '^(?i:https?)://[^/?#]*@') THEN 'url-scheme' END AS code FROM {cells}) "
            f"WHERE code IS NOT NULL"
        )
        parts.append(f"SELECT {lit(name)}, {q(LINE)}, col, 'cell-too-long', CAST(length(v) AS VARCHAR) FROM {cells} WHERE length(v) > {cell_chars}")
    if not parts:
        return findings
    for name, line, column, code, value in _run(con, " UNION ALL ".join(parts)):
        file = loaded[name].file
        if code == "formula":
            msg = f'the cell starts with "{value[:1]}" and a spreadsheet would run it as a formula'
        elif code == "control-char":
            bad = sorted(
                {
                    f"U+{ord(ch):04X}"
                    for ch in value
                    if ord(ch) < 32 or ord(ch) == 127 or 0x200E <= ord(ch) <= 0x200F or 0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069
                }
            )
            msg = f"the cell contains invisible control or bidirectional characters ({', '.join(bad)})"
        elif code == "cell-too-long":
            msg = f"the cell has {value} characters; the limit is {cell_chars}"
        else:
            msg = f'"{value[:80]}" is not a plain https address (script, data or file scheme, or credentials)'
        findings.append(Finding(file, line, column, code, msg))
    return findings
