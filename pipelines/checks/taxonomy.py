"""Taxonomy, lineage and fact-history rules: the class tree's own rules (class_rules, ranges, facets,
membership kinds) and the tables that hang off a model (fact_history, fact_gaps, model_relations).

Every rule is data in the package; this module only compiles it to SQL over the typed tables.
"""

from __future__ import annotations

from pipelines.package.descriptor import Package
from pipelines.package.findings import Finding
from pipelines.package.sql import lit, q
from pipelines.package.tables import LoadedTable

NEEDED = {"models", "classes", "model_classes", "class_rules", "model_relations", "fact_history", "fact_gaps"}

# class ids of a class and all its descendants (a membership in a subclass counts as one in the class)
_BELOW = """WITH RECURSIVE below(class_id, member_class_id) AS (
  SELECT class_id, class_id FROM typed_classes WHERE class_id IS NOT NULL
  UNION SELECT b.class_id, c.class_id FROM below b JOIN typed_classes c ON c.parent_class_id = b.member_class_id
) SELECT * FROM below"""


def _list(col: str) -> str:
    """A pipe-separated cell as a list of trimmed items."""
    return f"list_transform(string_split({col}, '|'), lambda x: trim(x))"


def check_taxonomy(con, pkg: Package, loaded: dict[str, LoadedTable], as_of=None) -> list[Finding]:
    """Class ranges, derived and concept classes, exclusions, implications, modality rules, facets, aliases."""
    if not NEEDED <= set(loaded):
        return []
    findings: list[Finding] = []
    file = {n: lt.file for n, lt in loaded.items()}

    def emit(table: str, column: str, code: str, sql: str, message: str) -> None:
        for line, *values in con.execute(sql).fetchall():
            findings.append(Finding(file[table], line, column, code, message.format(*values)))

    con.execute(f"CREATE OR REPLACE TEMP TABLE class_below AS {_BELOW}")
    # effective memberships: direct rows plus, for families, nothing more (a family is classified by its own rows)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE member_in AS SELECT DISTINCT mc.model_id, b.class_id FROM typed_model_classes mc "
        "JOIN class_below b ON b.member_class_id = mc.class_id WHERE mc.model_id IS NOT NULL"
    )

    # 1. ranges: a member's params_total (a family's: each member's) lies in [params_min, params_max)
    emit(
        "model_classes",
        "class_id",
        "class-range",
        "SELECT mc.__line, m.model_id, m.params_total, c.class_id, coalesce(CAST(c.params_min AS VARCHAR), '0'), coalesce(CAST(c.params_max AS VARCHAR), 'no limit') "
        "FROM typed_model_classes mc JOIN typed_classes c USING (class_id) "
        "JOIN (SELECT model_id, model_id AS owner, params_total FROM typed_models UNION ALL "
        "      SELECT model_id, family_id AS owner, params_total FROM typed_models WHERE family_id IS NOT NULL) m ON m.owner = mc.model_id "
        "WHERE m.params_total IS NOT NULL AND c.membership <> 'derived' AND "
        "(m.params_total < c.params_min OR m.params_total >= c.params_max) ORDER BY 1, 2",
        "{0} has {1} parameters, outside {2}'s range [{3}, {4})",
    )
    # 2. derived classes take no hand-written members; concept classes take none at all
    emit(
        "model_classes",
        "class_id",
        "derived-class",
        "SELECT mc.__line, mc.class_id FROM typed_model_classes mc JOIN typed_classes c USING (class_id) WHERE c.membership = 'derived'",
        "{0} is derived from params_total by the release; it cannot be written in model_classes",
    )
    emit(
        "model_classes",
        "class_id",
        "concept-has-members",
        "SELECT mc.__line, mc.class_id FROM typed_model_classes mc JOIN typed_classes c USING (class_id) WHERE c.membership = 'concept'",
        "{0} is marked as a concept (a class with no members on purpose), yet a model is listed in it",
    )
    emit(
        "classes",
        "membership",
        "empty-class",
        "SELECT c.__line, c.class_id FROM typed_classes c WHERE c.membership = 'curated' AND c.class_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM member_in mi WHERE mi.class_id = c.class_id)",
        "{0} has no members (none directly, none through a subclass)",
    )
    # 3. declared exclusions and implications (membership through a subclass counts)
    emit(
        "model_classes",
        "class_id",
        "class-exclusion",
        "SELECT min(mc.__line), a.model_id, r.class_id, r.other_class_id, r.rule_id FROM typed_class_rules r "
        "JOIN member_in a ON a.class_id = r.class_id JOIN member_in b ON b.class_id = r.other_class_id AND b.model_id = a.model_id "
        "JOIN typed_model_classes mc ON mc.model_id = a.model_id WHERE r.kind = 'excludes' AND r.class_id <> r.other_class_id GROUP BY ALL ORDER BY 1",
        "{0} is in both {1} and {2}, which exclude each other (rule {3})",
    )
    emit(
        "model_classes",
        "class_id",
        "class-implication",
        "SELECT min(mc.__line), a.model_id, r.class_id, r.other_class_id, r.rule_id FROM typed_class_rules r "
        "JOIN member_in a ON a.class_id = r.class_id JOIN typed_model_classes mc ON mc.model_id = a.model_id AND mc.class_id = a.class_id "
        "WHERE r.kind = 'implies' AND NOT EXISTS (SELECT 1 FROM member_in b WHERE b.model_id = a.model_id AND b.class_id = r.other_class_id) "
        "GROUP BY ALL ORDER BY 1",
        "{0} is in {1}, which implies {2}, but it is not in {2} (rule {3})",
    )
    # 4. modality rules: what members must read or produce, or may only read or produce (when the model states it)
    for kind, column, test, says in (
        ("requires-input", "input_modalities", "NOT list_has_all({m}, {v})", "must read"),
        ("requires-output", "output_modalities", "NOT list_has_all({m}, {v})", "must produce"),
        ("only-inputs", "input_modalities", "NOT list_has_all({v}, {m})", "may only read"),
        ("only-outputs", "output_modalities", "NOT list_has_all({v}, {m})", "may only produce"),
    ):
        cond = test.format(m=_list(f"m.{column}"), v=_list("r.value"))
        emit(
            "models",
            column,
            "class-modality",
            f"SELECT m.__line, m.model_id, m.{column}, r.class_id, r.value, r.rule_id FROM typed_class_rules r JOIN member_in mi ON mi.class_id = r.class_id "
            f"JOIN typed_models m ON m.model_id = mi.model_id WHERE r.kind = {lit(kind)} AND m.{column} IS NOT NULL AND r.value IS NOT NULL AND {cond} ORDER BY 1",
            "{0} states " + column + " {1}, but members of {2} " + says + " {3} (rule {4})",
        )
    # 5. mixture of experts: fewer parameters active than total (more than total is already a row rule)
    emit(
        "models",
        "params_active",
        "class-implication",
        "SELECT m.__line, m.model_id, m.params_active, m.params_total FROM typed_models m "
        f"WHERE m.params_active = m.params_total AND m.model_id IN (SELECT model_id FROM member_in WHERE class_id = {lit(pkg.policy.get('sparse_class', 'mixture-of-experts'))})",
        "{0} is sparse, so params_active ({1}) must be below params_total ({2})",
    )
    # 6. the tree: a parent on another facet must be declared; an alias names one class unless declared ambiguous
    emit(
        "classes",
        "parent_class_id",
        "parent-facet",
        "SELECT c.__line, c.class_id, c.facet, p.class_id, p.facet FROM typed_classes c JOIN typed_classes p ON p.class_id = c.parent_class_id "
        "WHERE c.facet <> p.facet AND c.parent_cross_facet IS NOT TRUE ORDER BY 1",
        "{0} is on the {1} facet but its parent {2} is on the {3} facet",
    )
    names = (
        "SELECT __line, class_id, lower(trim(name)) AS label, name AS shown FROM typed_classes WHERE name IS NOT NULL UNION ALL "
        "SELECT __line, class_id, lower(trim(abbreviation)), abbreviation FROM typed_classes WHERE abbreviation IS NOT NULL UNION ALL "
        f"SELECT __line, class_id, lower(trim(a)), trim(a) FROM (SELECT __line, class_id, unnest({_list('aliases')}) AS a FROM typed_classes WHERE aliases IS NOT NULL)"
    )
    emit(
        "classes",
        "aliases",
        "ambiguous-alias",
        f"WITH n AS ({names}), shared AS (SELECT label FROM n GROUP BY label HAVING count(DISTINCT class_id) > 1) "
        "SELECT n.__line, n.shown, n.class_id, (SELECT string_agg(DISTINCT o.class_id, ', ' ORDER BY o.class_id) FROM n o WHERE o.label = n.label AND o.class_id <> n.class_id) "
        "FROM n JOIN shared USING (label) WHERE n.label NOT IN (SELECT lower(trim(value)) FROM typed_class_rules WHERE kind = 'ambiguous-name' AND value IS NOT NULL) "
        "ORDER BY 1, 2",
        '"{0}" names {1} and also {2}; an alias may name one class unless class_rules lists it as an ambiguous name',
    )
    # 7. rule rows that cannot work
    emit(
        "class_rules",
        "value",
        "class-rule-incomplete",
        "SELECT __line, rule_id, kind FROM typed_class_rules WHERE (class_id = other_class_id) OR "
        "(kind IN ('excludes', 'implies') AND (class_id IS NULL OR other_class_id IS NULL)) OR "
        "(kind IN ('requires-input', 'requires-output', 'only-inputs', 'only-outputs') AND (class_id IS NULL OR value IS NULL)) OR "
        "(kind = 'ambiguous-name' AND value IS NULL)",
        "rule {0} of kind {1} lacks the class or value its kind needs",
    )
    # a rule's modalities come from the models' own vocabulary
    allowed = sorted({v for f in pkg.table("models").fields if f.item_enum for v in f.item_enum})
    if allowed:
        emit(
            "class_rules",
            "value",
            "class-rule-incomplete",
            "SELECT __line, rule_id, kind FROM typed_class_rules WHERE kind IN ('requires-input', 'requires-output', 'only-inputs', 'only-outputs') "
            f"AND value IS NOT NULL AND len(list_filter(string_split(value, '|'), lambda x: x NOT IN ({', '.join(lit(v) for v in allowed)}))) > 0 ORDER BY 1",
            "rule {0} of kind {1} names a modality that is not in the models' list of modalities",
        )
    # x-applies-to names classes that must exist, or coverage would call every fact not applicable
    for table in pkg.tables.values():
        for f in table.fields:
            spec = dict(f.x("x-applies-to") or ())
            if "class" in spec and not con.execute("SELECT 1 FROM typed_classes WHERE class_id = ?", [spec["class"]]).fetchall():
                findings.append(
                    Finding(table.schema_path, 0, f.name, "descriptor-reference", f'x-applies-to names the class "{spec["class"]}", which is not in classes')
                )
    findings += check_model_links(con, pkg, loaded)
    if as_of is not None:
        emit(
            "fact_history",
            "effective_on",
            "future-date",
            f"SELECT __line, effective_on, {lit(as_of.isoformat())} FROM typed_fact_history WHERE effective_on > {lit(as_of.isoformat()[:7])} "
            f"AND {month_date.format('effective_on')} > {lit(as_of.isoformat())} ORDER BY 1",
            "effective_on {0} lies after the as-of date {1}",
        )
    return findings


month_date = "CAST(CASE WHEN length({0}) = 7 THEN {0} || '-01' ELSE {0} END AS VARCHAR)"


def check_model_links(con, pkg: Package, loaded: dict[str, LoadedTable]) -> list[Finding]:
    """Lineage without cycles; fact history that ends at the current value; gaps only for empty facts."""
    findings: list[Finding] = []
    file = {n: lt.file for n, lt in loaded.items()}

    def emit(table: str, column: str, code: str, sql: str, message: str) -> None:
        for line, *values in con.execute(sql).fetchall():
            findings.append(Finding(file[table], line, column, code, message.format(*values)))

    lineage = "relation NOT IN ('uses-model')"
    emit(
        "model_relations",
        "target_id",
        "relation-cycle",
        f"WITH RECURSIVE up(model_id, ancestor) AS (SELECT model_id, target_id FROM typed_model_relations WHERE {lineage} "
        f"UNION SELECT up.model_id, r.target_id FROM up JOIN typed_model_relations r ON r.model_id = up.ancestor WHERE r.{lineage}) "
        f"SELECT min(r.__line), r.model_id FROM typed_model_relations r WHERE r.{lineage} AND r.model_id IN (SELECT model_id FROM up WHERE model_id = ancestor) "
        "GROUP BY r.model_id ORDER BY 1",
        "{0} is its own ancestor: the lineage has a cycle",
    )
    emit(
        "model_relations",
        "source_id",
        "uncited-relation",
        "SELECT __line, model_id, relation, target_id FROM typed_model_relations WHERE source_id IS NULL "
        "AND relation NOT IN ('uses-model', 'extends', 'distilled-from', 'fine-tuned-from') ORDER BY 1",
        "{0} {1} {2} names no source",
    )
    facts = [f.name for f in pkg.table("models").fields if f.fact]
    month_date = "CAST(CASE WHEN length({0}) = 7 THEN {0} || '-01' ELSE {0} END AS VARCHAR)"
    emit(
        "fact_history",
        "effective_on",
        "history-duplicate",
        f"SELECT h.__line, h.model_id, h.field, h.effective_on FROM (SELECT *, row_number() OVER (PARTITION BY model_id, field, {month_date.format('effective_on')} "
        "ORDER BY __line) AS k FROM typed_fact_history WHERE effective_on IS NOT NULL) h WHERE h.k > 1 ORDER BY 1",
        "{0}.{1} has two values taking effect on {2} (a month-only date stands for its first day)",
    )
    emit(
        "fact_history",
        "field",
        "unknown-field",
        f"SELECT __line, field FROM typed_fact_history WHERE field IS NOT NULL AND field NOT IN ({', '.join(lit(f) for f in facts)}) ORDER BY 1",
        '"{0}" is not a fact field of models',
    )
    current = " ".join(f"WHEN {lit(f)} THEN CAST(m.{q(f)} AS VARCHAR)" for f in facts)
    emit(
        "fact_history",
        "value",
        "history-mismatch",
        "SELECT h.__line, h.model_id, h.field, h.value, coalesce(cur, '(empty)') FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY model_id, field ORDER BY effective_on DESC) AS k FROM typed_fact_history) h "
        f"JOIN raw_models m ON m.model_id = h.model_id CROSS JOIN LATERAL (SELECT CASE h.field {current} END AS cur) "
        f"WHERE h.k = 1 AND h.field IN ({', '.join(lit(f) for f in facts)}) AND cur IS DISTINCT FROM h.value ORDER BY 1",
        "the latest value of {0}.{1} in fact_history is {2}, but models says {3}",
    )
    for table in ("models", "architectures"):
        if table not in loaded:
            continue
        pk = pkg.table(table).primary_key[0]
        names = [f.name for f in pkg.table(table).fields if f.fact]
        stated = " ".join(f"WHEN {lit(f)} THEN x.{q(f)} IS NOT NULL" for f in names)
        emit(
            "fact_gaps",
            "field",
            "gap-but-stated",
            f"SELECT g.__line, g.row_id, g.field FROM typed_fact_gaps g JOIN {q('raw_' + table)} x ON x.{q(pk)} = g.row_id "
            f"WHERE g.table_name = {lit(table)} AND (g.field = '*' OR CASE g.field {stated} ELSE FALSE END) AND NOT (g.field = '*' AND {lit(table)} = 'models') ORDER BY 1",
            "{0}.{1} is listed as a gap but the row states it (or has the whole row)",
        )
        emit(
            "fact_gaps",
            "field",
            "unknown-field",
            f"SELECT __line, field, table_name FROM typed_fact_gaps WHERE table_name = {lit(table)} AND field <> '*' AND field NOT IN ({', '.join(lit(f) for f in names)}) ORDER BY 1",
            '"{0}" is not a fact field of {1}',
        )
    emit(
        "fact_gaps",
        "row_id",
        "row-reference",
        "SELECT g.__line, g.row_id FROM typed_fact_gaps g ANTI JOIN typed_models m ON m.model_id = g.row_id WHERE g.row_id IS NOT NULL ORDER BY 1",
        '"{0}" is not a model_id in models',
    )
    return findings
