"""The fast engine: every check group as vectorised SQL in DuckDB, all findings collected in one run.

Stages read top to bottom: register the loaded tables, derive typed views from the schemas, then run
schema, key, row, cross-table, staleness and safety checks. Each check returns Finding objects.
"""

from __future__ import annotations

import json
import re
from datetime import date

from pipelines.checks.placeholders import PLACEHOLDERS
from pipelines.checks.rules import ROW_RULES
from pipelines.package import chars
from pipelines.package.descriptor import Field, Package, Table
from pipelines.package.findings import FINDINGS_CAP, CappedList, Finding, did_you_mean, more_finding
from pipelines.package.sql import cast_sql, lit, needs_cast, partial_date_sql, q, typed_ref
from pipelines.package.tables import LINE, LoadedTable

# pairs folded together when comparing ids for look-alikes (digit/letter and multi-letter confusions)
CONFUSABLES = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("|", "l"), ("_", "-"))
LIST_ITEM_RE = r"(^|\|)\s*(\||$)|\s\||\|\s"  # an empty item (a||b, a|, |a) or spaces around an item
TYPE_HINT = {
    "integer": "write whole digits only, for example 7000000000, between -9223372036854775808 and 9223372036854775807",
    "date": "write a real calendar date, YYYY-MM-DD, between 0001-01-01 and 9999-12-31",
    "boolean": "write true or false",
    "number": "write a finite number such as 1.5",
}


def register_tables(con, loaded: dict[str, LoadedTable], prefix: str = "") -> None:
    """Prepare what the checks share: the loader made raw_<name> and typed_<name>; add the latest reviews."""
    if not prefix and "reviews" in loaded:
        materialise_latest_reviews(con)


def _run(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def _valid(field: Field) -> str:
    """The cell is present and of its type (reads the typed value the loader stored; the exact test only where it is NULL)."""
    col = q(field.name)
    if not needs_cast(field):
        return f"{col} IS NOT NULL"
    ok, _ = cast_sql(field, col)
    return f"({typed_ref(field)} IS NOT NULL OR ({col} IS NOT NULL AND {ok}))"


def cell_checks(table: Table) -> list[tuple[str, str, str, str]]:
    """(column, code, violation predicate, detail expression) for every cell rule of a table, over raw_<name>."""
    checks = []
    for f in table.fields:
        col = q(f.name)
        ok, _ = cast_sql(f, col)
        typed = typed_ref(f)
        c = f.constraints
        present = _valid(f)
        if needs_cast(f):
            # the typed value is NULL for every invalid cell, so the exact test runs only on those few
            checks.append((f.name, "type", f"{col} IS NOT NULL AND {typed} IS NULL AND NOT {ok}", "NULL"))
        if c.get("required"):
            checks.append((f.name, "required", f"{col} IS NULL", "NULL"))
        if f.type == "list":
            # the release splits on | and stores each item: an empty item or one padded with spaces would change on the way
            checks.append((f.name, "list-item", f"{col} IS NOT NULL AND regexp_matches({col}, {lit(LIST_ITEM_RE)})", "NULL"))
        if f.date_precision and f.type == "string":
            real = partial_date_sql(col) if "month" in f.date_precision else f"(length({col}) = 10 AND {partial_date_sql(col)})"
            shaped = f"regexp_full_match({col}, {lit(c['pattern'])})" if "pattern" in c else "TRUE"
            checks.append((f.name, "calendar-date", f"{col} IS NOT NULL AND {shaped} AND NOT {real}", "NULL"))
        if "enum" in c:
            checks.append((f.name, "enum", f"{present} AND {col} NOT IN ({', '.join(lit(v) for v in c['enum'])})", "NULL"))
        if f.item_enum:
            items = ", ".join(lit(v) for v in f.item_enum)
            checks.append(
                (
                    f.name,
                    "enum",
                    f"{col} IS NOT NULL AND len(list_filter(string_split({col}, {lit(f.delimiter)}), lambda x: trim(x) NOT IN ({items}))) > 0",
                    "NULL",
                )
            )
        if "pattern" in c:
            checks.append((f.name, "pattern", f"{present} AND NOT regexp_full_match({col}, {lit(c['pattern'])})", "NULL"))
        if "minLength" in c:
            checks.append((f.name, "min-length", f"{present} AND length({col}) < {int(c['minLength'])}", f"CAST(length({col}) AS VARCHAR)"))
        if "maxLength" in c:
            # strlen (bytes) >= length (characters): a cheap test first
            checks.append(
                (
                    f.name,
                    "max-length",
                    f"{present} AND strlen({col}) > {int(c['maxLength'])} AND length({col}) > {int(c['maxLength'])}",
                    f"CAST(length({col}) AS VARCHAR)",
                )
            )
        if "minimum" in c:
            checks.append((f.name, "minimum", f"{typed} < {lit(c['minimum'])}", "NULL"))
        if "maximum" in c:
            checks.append((f.name, "maximum", f"{typed} > {lit(c['maximum'])}", "NULL"))
    return checks


def field_check_sql(table: Table) -> list[str]:
    """Cell rules in one scan per table, plus duplicate detection: rows of (line, column, code, value, detail)."""
    raw = q("raw_" + table.name)
    parts = []
    checks = cell_checks(table)
    if checks:
        flags = ", ".join(f"coalesce({pred}, FALSE) AS k{i}" for i, (_, _, pred, _) in enumerate(checks))
        # each predicate is planned once: as a flag column, which the outer filter then reads
        any_flag = " OR ".join(f"k{i}" for i in range(len(checks)))
        scan = f"(SELECT * FROM (SELECT {q(LINE)}, {flags}, {', '.join(q(f.name) for f in table.fields)} FROM {raw}) WHERE {any_flag})"
        parts += [
            f"SELECT {q(LINE)}, {lit(column)}, {lit(code)}, {q(column)}, {detail} FROM {q('flagged_' + table.name)} WHERE k{i}"
            for i, (column, code, _, detail) in enumerate(checks)
        ]
        parts.insert(0, f"CREATE OR REPLACE TEMP TABLE {q('flagged_' + table.name)} AS {scan}")
    for f in table.fields:
        if not f.constraints.get("unique") or table.primary_key == (f.name,):
            continue  # a repeated single-column primary key is one defect, reported once as primary-key
        col = q(f.name)
        typed = typed_ref(f)
        present = _valid(f)
        parts.append(
            f"SELECT r.{q(LINE)}, {lit(f.name)}, 'unique', r.v, CAST(d.first_line AS VARCHAR) FROM "
            f"(SELECT {typed} AS k, min({q(LINE)}) AS first_line FROM {raw} WHERE {present} GROUP BY k HAVING count(*) > 1) d "
            f"JOIN (SELECT {q(LINE)}, {col} AS v, {typed} AS k FROM {raw} WHERE {present}) r ON r.k = d.k WHERE r.{q(LINE)} > d.first_line"
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
        same = " AND ".join(f"t.{q(k)} IS NOT DISTINCT FROM d.{q(k)}" for k in pk)
        repeated = typed
        if len(pk) > 1:
            # a composite key: group on its hash first (cheaper), then compare the real keys of the few rows whose hashes repeat
            repeated = (
                f"(SELECT * FROM {typed} WHERE NOT ({all_null}) AND hash({keys}) IN "
                f"(SELECT hash({keys}) FROM {typed} WHERE NOT ({all_null}) GROUP BY 1 HAVING count(*) > 1))"
            )
        parts.append(
            f"SELECT t.{q(LINE)}, {lit(pk[0])}, 'primary-key', {shown.replace('CAST(', 'CAST(t.')}, CAST(d.first_line AS VARCHAR) FROM "
            f"(SELECT {keys}, min({q(LINE)}) AS first_line FROM {repeated} WHERE NOT ({all_null}) GROUP BY ALL HAVING count(*) > 1) d "
            f"JOIN {repeated} t ON {same} WHERE t.{q(LINE)} > d.first_line"
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
    if code == "enum" and f.item_enum:
        allowed = list(f.item_enum)
        bad = [v.strip() for v in str(value).split(f.delimiter) if v.strip() not in allowed]
        return f"{', '.join(repr(b) for b in bad)} in {shown} is not an allowed item of {column}{did_you_mean(bad[0], allowed) if bad else ''}; allowed: {', '.join(allowed)}"
    if code == "list-item":
        return f"{shown} has an empty item or spaces around an item; write items separated by | alone, like a|b"
    if code == "calendar-date":
        return f"{shown} is not a real calendar date between 0001-01-01 and 9999-12-31 ({' or '.join(f.date_precision)} precision: YYYY-MM-DD{', or YYYY-MM' if 'month' in f.date_precision else ''})"
    if code == "enum":
        allowed = f.constraints["enum"]
        return f"{shown} is not an allowed {column}{did_you_mean(value, allowed)}; allowed: {', '.join(map(str, allowed))}"
    if code == "pattern":
        if f.hint:
            return f"{shown} is not a valid {column}: write {f.hint}"
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
    return [f for lt in loaded.values() for f in _schema_and_keys(con, pkg, lt)]


def _schema_and_keys(con, pkg: Package, lt: LoadedTable) -> list[Finding]:
    findings = []
    table = lt.table
    parts = field_check_sql(table) + key_check_sql(table, pkg.tables)
    for statement in [p for p in parts if p.startswith("CREATE ")]:
        con.execute(statement)
    parts = [p for p in parts if not p.startswith("CREATE ")]
    flagged = q("flagged_" + table.name)
    if any(f"FROM {flagged} " in p for p in parts) and not _run(con, f"SELECT 1 FROM {flagged} LIMIT 1"):
        # no cell broke a rule (the usual case): skip planning one branch per rule, most of this check's time
        parts = [p for p in parts if f"FROM {flagged} " not in p]
    if not parts:
        return []
    # at most FINDINGS_CAP rows per rule, the first by line, each with the rule's total
    rows = _run(
        con,
        f"SELECT *, count(*) OVER (PARTITION BY code) AS total FROM ({' UNION ALL '.join(parts)}) u(line, col, code, value, detail) "
        f"QUALIFY row_number() OVER (PARTITION BY code ORDER BY line, col) <= {FINDINGS_CAP}",
    )
    con.execute(f"DROP TABLE IF EXISTS {q('flagged_' + table.name)}")
    fk_targets: dict[str, list] = {}
    totals = {}
    for line, column, code, value, detail, total in rows:
        totals[code] = total
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
    findings += [more_finding(lt.file, code, total - FINDINGS_CAP) for code, total in totals.items() if total > FINDINGS_CAP]
    return findings


def check_row_rules(con, loaded: dict[str, LoadedTable], as_of: date) -> list[Finding]:
    """The declared row rules (pipelines/rules.py), compiled to SQL."""
    findings = []
    for rule in ROW_RULES:
        if rule.table not in loaded:
            continue
        lt = loaded[rule.table]
        sql = rule.sql.replace(":as_of", lit(as_of))
        rows = _run(con, f"SELECT {q(LINE)}, to_json(t), count(*) OVER () FROM {q('typed_' + rule.table)} t WHERE {sql} ORDER BY 1 LIMIT {FINDINGS_CAP}")
        for line, row_json, _ in rows:
            values = json.loads(row_json)
            findings.append(Finding(lt.file, line, rule.column, rule.code, rule.message.format(as_of=as_of.isoformat(), **values)))
        if rows and rows[0][2] > FINDINGS_CAP:
            findings.append(more_finding(lt.file, rule.code, rows[0][2] - FINDINGS_CAP))
    return findings


def materialise_latest_reviews(con) -> None:
    """latest_reviews: per reviewed row, its latest review (ties broken by review_id) and distinct reviewers.

    Most rows have one review, so only rows with several go through the (costly) aggregation.
    """
    present = "table_name IS NOT NULL AND row_id IS NOT NULL AND reviewed_on IS NOT NULL"
    con.execute(f"CREATE OR REPLACE TEMP TABLE reviewed_often AS SELECT table_name, row_id FROM typed_reviews WHERE {present} GROUP BY ALL HAVING count(*) > 1")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE latest_reviews AS "
        f"SELECT table_name, row_id, reviewed_on AS last_reviewed, confidence, reviewer, 1 AS n_reviewers FROM typed_reviews r "
        f"ANTI JOIN reviewed_often USING (table_name, row_id) WHERE {present} "
        "UNION ALL SELECT table_name, row_id, l.d AS last_reviewed, l.c AS confidence, l.r AS reviewer, n_reviewers FROM ("
        "SELECT table_name, row_id, arg_max({'d': reviewed_on, 'c': confidence, 'r': reviewer}, (reviewed_on, review_id)) AS l, "
        f"count(DISTINCT reviewer) AS n_reviewers FROM typed_reviews SEMI JOIN reviewed_often USING (table_name, row_id) WHERE {present} GROUP BY ALL)"
    )
    con.execute("DROP TABLE reviewed_often")


def reviewable_tables(pkg: Package) -> list[str]:
    """Tables whose rows are reviewed: the enum of reviews.table_name (the schema is the source)."""
    if "reviews" not in pkg.tables:
        return []
    return [t for t in pkg.table("reviews").field("table_name").enum or [] if t in pkg.tables]


def referenced_tables(pkg: Package) -> set[str]:
    """Tables whose ids other rows refer to: foreign-key targets and the tables citations and reviews point into."""
    targets = {t.fk_target(fk) for t in pkg.tables.values() for fk in t.foreign_keys}
    for holder in ("citations", "reviews"):
        if holder in pkg.tables and "table_name" in pkg.table(holder).field_names:
            targets |= set(pkg.table(holder).field("table_name").enum or [])
    return targets & set(pkg.tables)


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
        rows = _run(con, f"SELECT *, count(*) OVER () FROM ({sql}) ORDER BY 1 LIMIT {FINDINGS_CAP}")
        for row in rows:
            line, values = row[0], row[1:-1]
            findings.append(Finding(file[table], line, column, code, message.format(*values)))
        if rows and rows[0][-1] > FINDINGS_CAP:
            findings.append(more_finding(file[table], code, rows[0][-1] - FINDINGS_CAP))

    reviewable = reviewable_tables(pkg)
    cited = [t for t in pkg.table("citations").field("table_name").enum or [] if t in pkg.tables]
    for holder in ("citations", "reviews"):
        targets = cited if holder == "citations" else reviewable
        for target in targets:
            pk = pkg.table(target).primary_key[0]
            emit(
                holder,
                f"SELECT h.{q(LINE)}, h.row_id FROM {q('typed_' + holder)} h ANTI JOIN {q('typed_' + target)} t ON t.{q(pk)} = h.row_id "
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

    # per cited table: which of its rows have a primary citation, and for which fact fields (one pass over citations)
    for t in dict.fromkeys(cited + reviewable):
        table = pkg.table(t)
        pk = table.primary_key[0]
        facts = fact_fields(table) if t in cited else []
        flags = "".join(f", bool_or(c.field = {lit(f)}) AS {q(f)}" for f in facts)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {q('primary_cited_' + t)} AS SELECT c.row_id{flags} FROM typed_citations c "
            f"SEMI JOIN (SELECT source_id FROM typed_sources WHERE tier = 'primary') s USING (source_id) "
            f"WHERE c.table_name = {lit(t)} AND c.row_id IS NOT NULL GROUP BY c.row_id"
        )
        if not facts:
            continue
        missing = [f"x.{q(f)} IS NOT NULL AND p.{q(f)} IS NOT TRUE" for f in facts]
        rows = _run(
            con,
            f"SELECT x.{q(LINE)}, x.{q(pk)}, {', '.join(f'({m})' for m in missing)} FROM {q('typed_' + t)} x "
            f"LEFT JOIN {q('primary_cited_' + t)} p ON p.row_id = x.{q(pk)} WHERE {' OR '.join(f'({m})' for m in missing)}",
        )
        for line, key, *gaps in rows:
            for fname, gap in zip(facts, gaps, strict=True):
                if gap:
                    findings.append(Finding(file[t], line, fname, "uncited-fact", f"{key} states {fname} without a citation to a primary source"))

    emit(
        "classes",
        "WITH RECURSIVE up(class_id, ancestor) AS (SELECT class_id, parent_class_id FROM typed_classes WHERE parent_class_id IS NOT NULL "
        "UNION SELECT up.class_id, c.parent_class_id FROM up JOIN typed_classes c ON c.class_id = up.ancestor WHERE c.parent_class_id IS NOT NULL) "
        "SELECT c.__line, c.class_id FROM typed_classes c WHERE c.class_id IN (SELECT class_id FROM up WHERE class_id = ancestor)",
        "class-cycle",
        "parent_class_id",
        "{} is its own ancestor: the class tree has a cycle",
    )

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
            f"SELECT x.{q(LINE)}, x.{q(pk)} FROM {q('typed_' + t)} x JOIN latest_reviews l ON l.table_name = {lit(t)} AND l.row_id = x.{q(pk)} "
            f"WHERE l.confidence = 'high' AND NOT EXISTS (SELECT 1 FROM {q('primary_cited_' + t)} p WHERE p.row_id = x.{q(pk)})",
            "high-needs-primary",
            pk,
            "{} is rated high but cites no primary source",
        )
        for level, need in min_reviewers.items():
            emit(
                t,
                f"SELECT x.{q(LINE)}, x.{q(pk)}, l.n_reviewers FROM {q('typed_' + t)} x JOIN latest_reviews l ON l.table_name = {lit(t)} "
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
            f"FROM {q('typed_' + t)} x JOIN latest_reviews l ON l.table_name = {lit(t)} AND l.row_id = x.{q(pk)} "
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


def check_placeholders(con, loaded: dict[str, LoadedTable]) -> list[Finding]:
    """Cells still holding a placeholder that `model-atlas new` wrote (pipelines/checks/placeholders.py)."""
    findings = []
    for p in PLACEHOLDERS:
        lt = loaded.get(p.table)
        if lt is None or p.column not in lt.table.field_names:
            continue
        for (line,) in _run(con, f"SELECT {q(LINE)} FROM {q('raw_' + p.table)} WHERE trim({q(p.column)}) = {lit(p.text)}"):
            message = f'"{p.text}" is the placeholder that model-atlas new wrote into {p.column}'
            findings.append(Finding(lt.file, line, p.column, "placeholder", message, p.fix))
    return findings


FORMULA_RE = re.compile(r"^[=+\-@\t\r]")
SCHEME_RE = re.compile(r"^\s*(?:javascript|data|file|vbscript):", re.I)
CREDENTIALS_RE = re.compile(r"^https?://[^/?#]*@", re.I)
# one RE2 pattern that every suspicious free-text cell matches (the exact rules are applied in Python to those few)
ROW_PREFILTER = r"[^\t -~\n]|^[ \t]|[ \t]$|[ \t]\n|\n[ \t]"
SUSPECT_RE = r"^[=+\-@\t\r]|^\s*(?i:javascript|data|file|vbscript):|^(?i:https?)://[^/?#]*@"


def free_text(field: Field) -> bool:
    """Whether a column can hold arbitrary text, and so needs the formula, control-character and URL rules.

    Typed columns, enums and strict character-class patterns (slugs, dates) cannot: a value that
    matches them holds none of those characters, and one that does not is already an error.
    """
    if field.type not in ("string", "list") or "enum" in field.constraints:
        return False
    pattern = field.constraints.get("pattern")
    return pattern is None or "." in pattern or "[^" in pattern or "\\s" in pattern


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _refused(value: str) -> list[str]:
    """Refused characters of a cell, less the line feed, which embedded-newline reports."""
    return [c for c in chars.refused_chars(value) if c != "U+000A"]


def cell_safety_codes(value: str, cell_chars: int, free: bool = True) -> list[str]:
    """The safety rules one cell breaks (the formula and URL rules only in free-text columns)."""
    codes = []
    if _refused(value):
        codes.append("control-char")
    if chars.has_edge_whitespace(value):
        codes.append("whitespace")
    if len(value) > cell_chars:
        codes.append("cell-too-long")
    if not free:
        return codes
    if FORMULA_RE.match(value) and not _is_number(value):
        codes.append("formula")
    if SCHEME_RE.match(value) or CREDENTIALS_RE.match(value):
        codes.append("url-scheme")
    return codes


def check_safety(con, pkg: Package, loaded: dict[str, LoadedTable]) -> list[Finding]:
    """Formula injection, control and bidi characters, unsafe URLs, oversized cells and rows, look-alike ids."""
    limits = pkg.policy.get("limits", {})
    cell_chars = int(limits.get("cell_chars", 2000))
    row_chars = int(limits.get("row_chars", 8000))
    findings = CappedList()
    referenced = referenced_tables(pkg)
    for name, lt in loaded.items():
        fields = [f.name for f in lt.table.fields if free_text(f)]
        if not lt.table.fields:
            continue
        # one scan: rows with any suspicious cell, any cell over the limit, or too long in all
        every = [f.name for f in lt.table.fields]
        # refused characters: a row whose cells hold anything but tab and printable ASCII goes to Python,
        # which applies the exact rule (pipelines/package/chars.py). RE2 takes several milliseconds to
        # compile a Unicode-category class, per use and per query, so the prefilter stays ASCII. The
        # cells are joined by a line feed, so the same regex finds edge whitespace: in a row of plain
        # ASCII the only characters str.strip() removes are space and tab, at the start or end of the
        # text or next to a line feed. (A line feed inside a cell only sends its row to Python for
        # nothing; embedded-newline reports it.) Formulas need each free cell's start.
        joined = f"regexp_matches(concat_ws(chr(10), {', '.join(q(c) for c in every)}), {lit(ROW_PREFILTER)})"
        suspect = " OR ".join([joined] + [f"regexp_matches({q(c)}, {lit(SUSPECT_RE)})" for c in fields])
        longest = " OR ".join(f"strlen({q(c)}) > {cell_chars}" for c in every)
        total = " + ".join(f"coalesce(strlen({q(c)}), 0)" for c in every)
        cursor = con.execute(
            f"SELECT {q(LINE)}, {', '.join(q(c) for c in every)} FROM {q('raw_' + name)} WHERE {suspect} OR {longest} OR {total} > {row_chars}"
        )
        rows = _stream(cursor)  # findings are capped, so rows need not be held
        for line, *values in rows:
            for column, value in zip(every, values, strict=True):
                if value is None:
                    continue
                codes = cell_safety_codes(value, cell_chars, free=column in fields)
                for code in codes:
                    findings.append(Finding(lt.file, line, column, code, _safety_message(code, value, cell_chars)))
            size = sum(len(v) for v in values if v)
            if size > row_chars:
                findings.append(Finding(lt.file, line, "", "row-too-long", f"the row has {size} characters in all; the limit is {row_chars}"))
        pk = lt.table.primary_key
        if len(pk) == 1 and name in referenced:
            # look-alike ids, where people type ids as references: equal once case, accents and the usual confusable characters are folded
            v = q(pk[0])
            # accents and Unicode forms only matter outside ASCII (where bytes and characters differ in number)
            skeleton = f"CASE WHEN strlen({v}) = length({v}) THEN lower({v}) ELSE lower(strip_accents(nfc_normalize({v}))) END"
            singles = [(a, b) for a, b in CONFUSABLES if len(a) == 1 and len(b) == 1]
            skeleton = f"translate({skeleton}, {lit(''.join(a for a, _ in singles))}, {lit(''.join(b for _, b in singles))})"
            for a, b in CONFUSABLES:
                if (a, b) not in singles:
                    skeleton = f"replace({skeleton}, {lit(a)}, {lit(b)})"
            folded = f"SELECT {q(LINE)}, {v} AS v, {skeleton} AS k FROM {q('raw_' + name)} WHERE {v} IS NOT NULL"
            clashes = f"SELECT k, min({q(LINE)}) AS first_line FROM ({folded}) GROUP BY k HAVING min(v) <> max(v)"
            if not _run(con, f"SELECT 1 FROM ({clashes}) LIMIT 1"):
                continue
            sql = (
                f"WITH s AS ({folded}), d AS ({clashes}) "
                f"SELECT s.{q(LINE)}, s.v, f.v, d.first_line FROM s JOIN d USING (k) JOIN s f ON f.{q(LINE)} = d.first_line WHERE s.v <> f.v"
            )
            for line, value, first, first_line in _run(con, sql + f" ORDER BY 1 LIMIT {FINDINGS_CAP + 1}"):
                findings.append(
                    Finding(
                        lt.file,
                        line,
                        pk[0],
                        "confusable-id",
                        f'"{value}" looks like "{first}" (line {first_line}): it differs only by case or look-alike characters',
                    )
                )
    return findings.closed()


def _stream(cursor, size: int = 4096):
    """Rows of an executed query, a batch at a time."""
    while batch := cursor.fetchmany(size):
        yield from batch


def _safety_message(code: str, value: str, cell_chars: int) -> str:
    if code == "formula":
        first = {"\t": "a tab", "\r": "a carriage return"}.get(value[:1], f'"{value[:1]}"')
        return f"the cell starts with {first} and a spreadsheet would run it as a formula"
    if code == "control-char":
        bad = _refused(value)
        shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
        return f"the cell contains invisible or control characters ({shown}): controls, format characters, line or paragraph separators, private-use or unassigned code points"
    if code == "whitespace":
        what = "only whitespace" if not value.strip() else "whitespace at its start or end"
        return f"the cell holds {what}, which fmt would trim"
    if code == "cell-too-long":
        return f"the cell has {len(value)} characters; the limit is {cell_chars}"
    return f'"{value[:80]}" is not a plain https address (script, data or file scheme, or credentials)'
