"""Findings: what a check reports, the registry of rule codes, and the three output formats."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from pipelines.package.chars import for_json, for_terminal


@dataclass(frozen=True)
class Rule:
    """A rule code: its check group, default severity, frictionless equivalent and how to fix it."""

    group: str
    severity: str
    fix: str
    frictionless: str | None = None


RULES: dict[str, Rule] = {
    # descriptor and files
    "descriptor-missing": Rule("package", "error", "Run the command from the repository root, or pass --root."),
    "descriptor-json": Rule("package", "error", "Fix the JSON syntax at the position shown (a JSON linter helps)."),
    "descriptor-path": Rule("package", "error", "Give the resource a relative path such as data/models.csv."),
    "path-outside-package": Rule("package", "error", "Use a relative path inside the repository, without '..', URLs or symlinks that lead out."),
    "schema-missing": Rule("package", "error", "Point the resource's schema at an existing file in schemas/."),
    "descriptor-schema": Rule(
        "package",
        "error",
        "Make the JSON at this place match the profile in schemas/profiles/ (names are lower-case letters, digits and _, starting with a letter).",
    ),
    "descriptor-reference": Rule("package", "error", "Name an existing field or resource, once: keys and references must point at what the schemas declare."),
    "invalid-pattern": Rule("package", "error", "Write a regular expression that both Python and RE2 accept (no look-arounds or back-references)."),
    "missing-file": Rule("hygiene", "error", "Restore the CSV file, or remove the resource from datapackage.json."),
    "unlisted-file": Rule("hygiene", "error", "List the file as a resource in datapackage.json with a schema, or delete it."),
    "large-file-not-strict": Rule(
        "hygiene", "error", "Save the file as UTF-8 with LF line endings, no blank lines and no line breaks inside cells; then validate checks its cells."
    ),
    "file-too-large": Rule("safety", "error", "Split the table or raise limits.file_bytes in datapackage.json after review."),
    "empty-file": Rule("hygiene", "error", "Write at least the header row that the schema declares."),
    "no-rows": Rule("hygiene", "warning", "Add rows, or remove the table if it is not needed."),
    "bom": Rule("hygiene", "error", "Save the file as UTF-8 without a byte order mark (run `model-atlas fmt`)."),
    "encoding": Rule("hygiene", "error", "Save the file as UTF-8; the bytes at this line are not valid UTF-8.", "encoding-error"),
    "line-endings": Rule("hygiene", "error", "Use LF line endings (run `model-atlas fmt`, or set your editor to LF)."),
    "final-newline": Rule("hygiene", "error", "End the file with a single newline (run `model-atlas fmt`)."),
    "embedded-newline": Rule("hygiene", "error", "Put the cell on one line: replace the line break inside the quotes with a space."),
    "unbalanced-quote": Rule("hygiene", "error", 'Close the quoted cell with a double quote, and double any quote inside it ("").'),
    "blank-row": Rule("hygiene", "error", "Delete the empty line.", "blank-row"),
    "extra-cell": Rule("hygiene", "error", "Remove the extra cell, or quote the cell that contains a comma.", "extra-cell"),
    "missing-cell": Rule("hygiene", "error", "Add the missing cells (leave a cell empty between commas if it has no value).", "missing-cell"),
    "duplicate-header": Rule("hygiene", "error", "Each column name may appear once; remove or rename the repeat.", "duplicate-label"),
    "header": Rule("hygiene", "error", "Make the header row equal the schema's field names, in order.", "incorrect-label"),
    "missing-header": Rule("hygiene", "error", "Add the missing column to the header and to every row.", "missing-label"),
    "extra-header": Rule("hygiene", "error", "Remove the column, or add it to the table's schema first.", "extra-label"),
    "blank-header": Rule("hygiene", "error", "Give the column its schema name.", "blank-label"),
    # Table Schema
    "type": Rule("schema", "error", "Write the value in the column's type.", "type-error"),
    "list-item": Rule("schema", "error", "Separate the items with | alone and leave no item empty: a|b|c."),
    "calendar-date": Rule("schema", "error", "Write a date that exists on the calendar (no 30 February, no year 0000)."),
    "required": Rule("schema", "error", "Fill in the cell; the column is required.", "constraint-error"),
    "enum": Rule("schema", "error", "Use one of the allowed values.", "constraint-error"),
    "pattern": Rule("schema", "error", "Write the value in the form the message describes.", "constraint-error"),
    "min-length": Rule("schema", "error", "Write a longer value.", "constraint-error"),
    "max-length": Rule("schema", "error", "Shorten the value.", "constraint-error"),
    "minimum": Rule("schema", "error", "Use a value at or above the minimum.", "constraint-error"),
    "maximum": Rule("schema", "error", "Use a value at or below the maximum.", "constraint-error"),
    "unique": Rule("keys", "error", "Make the value unique, or merge the two rows.", "unique-error"),
    "primary-key": Rule("keys", "error", "Give the row a key no other row has, or merge the two rows.", "primary-key"),
    "foreign-key": Rule("keys", "error", "Use an existing key, or add the referenced row first.", "foreign-key"),
    "row-reference": Rule("keys", "error", "Point table_name/row_id at an existing row."),
    "unknown-field": Rule("keys", "error", "Name a column of the cited table, or * for the whole row."),
    # row rules (declared in pipelines/rules.py)
    "params-active-exceeds-total": Rule("row", "error", "params_active counts a subset of params_total: fix whichever is wrong."),
    "future-date": Rule("row", "error", "Correct the date: it cannot lie after the as-of date (today in UTC, unless --as-of names another day)."),
    "closed-licence": Rule(
        "row",
        "error",
        "Leave license empty and add a fact_gaps row (models, the model's id, license, not-applicable) saying the weights are closed.",
    ),
    "published-after-accessed": Rule("row", "error", "A source is read after it is published: fix published or accessed."),
    "params-range": Rule("row", "error", "params_min must not exceed params_max."),
    "seed-correction-incomplete": Rule(
        "row",
        "error",
        "A review that checks a seed claim needs seed_value (what the seed said); a correction also needs field (the column corrected, or * for the row).",
    ),
    "url-required": Rule("row", "error", "Give the https address of the document; only seed notes may lack one."),
    "placeholder": Rule("row", "error", "Replace the placeholder with the real value (each placeholder's finding says what belongs there)."),
    # cross-table rules
    "unclassified-model": Rule("cross", "error", "Add a model_classes row linking the model to at least one class."),
    "product-in-class": Rule("cross", "error", "Products, devices and frameworks are not models: link them with model_relations (uses-model) instead."),
    "active-params-dense": Rule(
        "cross", "error", "Only mixture-of-experts models have active parameters: clear params_active or add the model to mixture-of-experts."
    ),
    "uncited-fact": Rule("cross", "error", "Add a citations row for this field pointing at a primary source (paper, model card, official post)."),
    "class-cycle": Rule("cross", "error", "Break the loop: one class in the cycle must have another parent or none."),
    "unreviewed": Rule("cross", "error", "Add a reviews row for it (see CONTRIBUTING.md, 'Reviewing a row')."),
    "high-needs-primary": Rule("cross", "error", "Cite a primary source for the row, or lower the review's confidence."),
    "too-few-reviewers": Rule("cross", "error", "Ask another maintainer to review the row, or lower the confidence."),
    "review-before-publication": Rule("cross", "error", "A review cannot predate the sources it checked: fix reviewed_on."),
    # staleness
    "class-range": Rule("taxonomy", "error", "Move the model to the class whose range holds its parameter count, or correct params_total."),
    "derived-class": Rule("taxonomy", "error", "Delete the row: the release computes this membership from params_total and the class's range."),
    "concept-has-members": Rule("taxonomy", "error", "Link the model to a curated class, or set the class's membership to curated."),
    "empty-class": Rule("taxonomy", "error", "Add the models that define the class, or set its membership to concept if it has none on purpose."),
    "class-exclusion": Rule("taxonomy", "error", "Keep the one class that fits the model's published architecture and delete the other membership."),
    "class-implication": Rule("taxonomy", "error", "Add the implied class to the model, or correct the fact that breaks the rule."),
    "class-modality": Rule("taxonomy", "error", "Correct the model's modalities, or move it out of the class whose definition it does not meet."),
    "parent-facet": Rule("taxonomy", "error", "Choose a parent on the same facet, or set parent_cross_facet to true if the link across facets is deliberate."),
    "ambiguous-alias": Rule("taxonomy", "error", "Give the alias to one class only, or add an ambiguous-name row to class_rules if the name really is shared."),
    "class-rule-incomplete": Rule("taxonomy", "error", "Fill in class_id, other_class_id or value as the rule's kind requires."),
    "relation-cycle": Rule("taxonomy", "error", "Break the loop: a model cannot derive from its own descendant."),
    "uncited-relation": Rule("taxonomy", "error", "Give the relation's source_id and locator: the paper or model card that states the lineage."),
    "history-mismatch": Rule("taxonomy", "error", "The newest fact_history value is the current one: make models and fact_history agree."),
    "history-duplicate": Rule("taxonomy", "error", "Keep one value per date: merge the two rows, or give the later change its own date."),
    "gap-but-stated": Rule("taxonomy", "error", "Delete the fact_gaps row: the fact is stated now."),
    "stale": Rule("staleness", "error", "Re-check the row against its sources and add a review dated today."),
    "review-due": Rule("staleness", "warning", "Re-check the row soon and add a review (model-atlas stale lists them)."),
    # safety
    "formula": Rule("safety", "error", "Remove the leading = + - @ or tab, or reword the cell; spreadsheets would run it as a formula."),
    "control-char": Rule("safety", "error", "Delete the invisible character from the cell (SECURITY.md lists the character policy)."),
    "whitespace": Rule("safety", "error", "Run `model-atlas fmt` to trim the cell (an all-whitespace cell becomes empty), or delete the spaces."),
    "cell-too-long": Rule("safety", "error", "Shorten the cell below the limit (limits.cell_chars in datapackage.json)."),
    "row-too-long": Rule("safety", "error", "Shorten the row's cells below the row limit (limits.row_chars in datapackage.json)."),
    "url-scheme": Rule("safety", "error", "Use a plain https:// address without user name or password."),
    "confusable-id": Rule("safety", "error", "Use a distinct id: this one differs from another only by case or look-alike characters."),
}


@dataclass(frozen=True)
class Finding:
    """One problem at one place. line is the 1-based line in the file as an editor shows it (0 = whole file)."""

    file: str
    line: int
    column: str
    code: str
    message: str
    fix: str = ""
    severity: str = ""

    def __post_init__(self):
        rule = RULES.get(self.code)
        if not self.severity:
            object.__setattr__(self, "severity", rule.severity if rule else "error")
        if not self.fix and rule:
            object.__setattr__(self, "fix", rule.fix)

    @property
    def sort_key(self):
        return (self.file, self.line, self.column, self.code, self.message)


FINDINGS_CAP = 1000  # findings listed per rule and file; the rest are counted in one summary finding
MORE = "(more)"  # the column of a summary finding


def more_finding(file: str, code: str, hidden: int) -> Finding:
    """One finding that stands for the findings of a rule in a file beyond the cap."""
    return Finding(file, 0, MORE, code, f"{hidden} more {code} finding(s) in {file} are not listed (only the first {FINDINGS_CAP} of each rule per file are)")


def hidden_count(f: Finding) -> int:
    return int(f.message.split(" ", 1)[0]) if f.column == MORE else 0


class CappedList(list):
    """A list of findings that keeps at most FINDINGS_CAP per (file, code) and counts the rest (bounded memory on huge bad input)."""

    def __init__(self, cap: int = FINDINGS_CAP):
        super().__init__()
        self.cap = cap
        self.seen: dict[tuple[str, str], int] = {}

    def append(self, f: Finding) -> None:  # noqa: D102
        key = (f.file, f.code)
        n = self.seen.get(key, 0) + 1
        self.seen[key] = n
        if n <= self.cap:
            super().append(f)

    def extend(self, items) -> None:  # noqa: D102
        for f in items:
            self.append(f)

    def __iadd__(self, items):
        self.extend(items)
        return self

    def closed(self) -> list[Finding]:
        """The kept findings plus one summary finding per (file, code) over the cap."""
        out = list(self)
        out += [more_finding(file, code, n - self.cap) for (file, code), n in self.seen.items() if n > self.cap]
        return out


def cap_findings(findings: list[Finding], cap: int = FINDINGS_CAP) -> list[Finding]:
    """At most cap findings per rule and file (the first by line), and one summary finding counting the rest."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    hidden: dict[tuple[str, str], int] = {}
    for f in findings:
        key = (f.file, f.code)
        if f.column == MORE:
            hidden[key] = hidden.get(key, 0) + hidden_count(f)
        else:
            groups.setdefault(key, []).append(f)
    out = []
    for key, items in groups.items():
        if len(items) > cap:
            items = sorted(items, key=lambda f: f.sort_key)
            hidden[key] = hidden.get(key, 0) + len(items) - cap
            items = items[:cap]
        out += items
    out += [more_finding(file, code, n) for (file, code), n in hidden.items() if n]
    return out


def did_you_mean(value: str, choices) -> str:
    """A ' (did you mean "x"?)' suffix for the closest choice, or ''."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def format_human(findings: list[Finding], checked: str) -> str:
    """Grouped by file, sorted by line; a summary line last."""
    out: list[str] = []
    current = None
    for f in sorted(findings, key=lambda f: f.sort_key):
        if f.file != current:
            if current is not None:
                out.append("")
            current = f.file
        where = for_terminal(f"{f.file}:{f.line}" + (f":{f.column}" if f.column else ""))
        out.append(f"{where}: {f.severity}[{f.code}] {for_terminal(f.message)}")  # a hostile value cannot move the cursor or hide text
        if f.fix:
            out.append(f"    fix: {f.fix}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if out:
        out.append("")
    out.append(f"{errors} error(s), {warnings} warning(s) in {checked}")
    return "\n".join(out)


def format_json(findings: list[Finding], checked: str) -> str:
    """The stable JSON shape documented in docs/validation.md."""
    items = [asdict(f) for f in sorted(findings, key=lambda f: f.sort_key)]
    return for_json(
        json.dumps(
            {
                "version": 1,
                "checked": checked,
                "errors": sum(f.severity == "error" for f in findings),
                "warnings": sum(f.severity == "warning" for f in findings),
                "findings": items,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


def _escape_data(text: str) -> str:
    text = for_terminal(text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: list[Finding], checked: str) -> str:
    """GitHub Actions workflow commands: one annotation per finding."""
    out = []
    for f in sorted(findings, key=lambda f: f.sort_key):
        level = "error" if f.severity == "error" else "warning"
        props = f"file={_escape_property(f.file)}"
        if f.line:
            props += f",line={f.line}"
        title = f"{f.code}" + (f" in {f.column}" if f.column else "")
        props += f",title={_escape_property(title)}"
        out.append(f"::{level} {props}::{_escape_data(f.message + ' | fix: ' + f.fix)}")
    out.append(f"{sum(f.severity == 'error' for f in findings)} error(s), {sum(f.severity == 'warning' for f in findings)} warning(s) in {checked}")
    return "\n".join(out)


FORMATS = {"human": format_human, "json": format_json, "github": format_github}
