"""The descriptor and every Table Schema checked against the project's JSON Schema profiles
(schemas/profiles/), then their names and references checked against each other, before anything
else reads them. Every problem is a finding located by a JSON Pointer (/resources/3/name), never an
exception: what comes out of here is safe to turn into SQL identifiers (through sql.q).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from pipelines.package.files import no_duplicate_keys, no_json_constant
from pipelines.package.findings import Finding

PROFILES = Path(__file__).resolve().parents[2] / "schemas" / "profiles"
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,62}")  # resource and field names: the profiles say the same
MAX_JSON_BYTES = 1 << 20  # a descriptor or schema larger than 1 MiB is refused unread
MAX_JSON_DEPTH = 32  # far deeper than any real descriptor, far below Python's recursion limit
MAX_FINDINGS = 50  # per file: a hostile file cannot flood the report
# names a release gives its own tables and views (pipelines/release/build.py; a test keeps the two in step)
RESERVED_NAMES = frozenset(
    {
        "release_info",
        "release_changes",
        "model_overview",
        "class_tree",
        "class_members",
        "stale_rows",
        "fact_citations",
        "seed_corrections",
        "architecture_comparison",
        "ambiguous_abbreviations",
        "model_lineage",
        "fact_timeline",
        "fact_coverage",
    }
)


# field names DuckDB gives its own meaning (the rowid pseudo-column numbers a table's rows: the loader
# computes line numbers from it, so a field of that name would shadow it)
RESERVED_FIELD_NAMES = frozenset({"rowid"})


def pointer(path) -> str:
    """A JSON Pointer (RFC 6901) for a sequence of keys and indexes: ('resources', 3, 'name') -> /resources/3/name."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _depth(value) -> int:
    """Nesting depth, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_JSON_DEPTH:
            return d
        if isinstance(v, dict):
            stack += [(x, d + 1) for x in v.values()]
        elif isinstance(v, list):
            stack += [(x, d + 1) for x in v]
    return deepest


def read_json(path: Path, file: str) -> tuple[object, list[Finding]]:
    """Parse a descriptor or schema file strictly: size, UTF-8, syntax, duplicate keys, NaN/Infinity, depth."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            return None, [Finding(file, 0, "", "descriptor-json", f"the file has {size} bytes; descriptors and schemas may have at most {MAX_JSON_BYTES}")]
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Finding(file, 0, "", "descriptor-json", f"the file is not UTF-8 (byte {exc.start})")]
    except OSError as exc:
        return None, [Finding(file, 0, "", "descriptor-json", f"cannot read the file: {exc.strerror or exc}")]
    try:
        value = json.loads(text, object_pairs_hook=no_duplicate_keys, parse_constant=no_json_constant)
    except json.JSONDecodeError as exc:
        return None, [Finding(file, exc.lineno, "", "descriptor-json", f"invalid JSON: {exc.msg} (column {exc.colno})")]
    except RecursionError:
        return None, [Finding(file, 0, "", "descriptor-json", f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")]
    except ValueError as exc:
        return None, [Finding(file, 0, "", "descriptor-json", f"invalid JSON: {exc}")]
    if _depth(value) > MAX_JSON_DEPTH:
        return None, [Finding(file, 0, "", "descriptor-json", f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")]
    return value, []


@cache
def _profile(name: str) -> dict:
    return json.loads((PROFILES / name).read_text(encoding="utf-8"))


@cache
def _fast_validator(name: str):
    """jsonschema-rs (compiled, about 1,000x faster): says only whether a document is valid."""
    import jsonschema_rs

    return jsonschema_rs.validator_for(_profile(name))


@cache
def _validator(name: str):
    """The reference implementation (python-jsonschema), which locates and describes every error.
    The profiles themselves are checked against the 2020-12 meta-schema by the tests."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_profile(name))


def _describe(error) -> str:
    """A plain sentence for a JSON Schema error (the raw messages quote whole values)."""
    v = error.validator
    if v == "required":
        return _short(error.message.replace(" is a required property", " is required"))
    if v == "additionalProperties":
        return _short(error.message) + "; the profile allows only its own keys and keys starting with x-"
    if v == "type":
        return f"must be of type {error.validator_value}, not {type(error.instance).__name__}"
    if v == "enum":
        return f"{_short(json.dumps(error.instance), 60)} is not one of {', '.join(map(str, error.validator_value))}"
    if v == "const":
        return f"{_short(json.dumps(error.instance), 60)} must be {json.dumps(error.validator_value)}"
    if v == "pattern":
        return f"{_short(json.dumps(error.instance), 80)} does not match {error.validator_value}"
    if v in ("oneOf", "anyOf"):
        return f"{_short(json.dumps(error.instance), 80)} is not a valid value here (see schemas/profiles/)"
    return _short(error.message)


def profile_findings(value, profile: str, file: str) -> list[Finding]:
    """Every place where value breaks the named profile, as located findings (at most MAX_FINDINGS)."""
    if _fast_validator(profile).is_valid(value):
        # the fast path for a valid file; the tests hold both implementations to the same verdicts
        return []
    out = []
    for error in sorted(_validator(profile).iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        where = pointer(error.absolute_path) or "/"
        if error.validator in ("oneOf", "anyOf") and error.context:
            # name the narrowest cause (an identifier pattern, a type) when all branches fail at one place
            deepest = max(error.context, key=lambda e: len(e.absolute_path))
            if len(deepest.absolute_path) > len(error.absolute_path):
                error, where = deepest, pointer(deepest.absolute_path)
        out.append(Finding(file, 0, where, "descriptor-schema", _describe(error)))
        if len(out) >= MAX_FINDINGS:
            break
    return out


def text_findings(value, file: str) -> list[Finding]:
    """Every key and string in a descriptor or schema against the character policy: titles, descriptions,
    enum values and hints reach the release (comments, Parquet metadata, datapackage.json) and terminals."""
    from pipelines.package.chars import refused_chars

    out = []
    stack = [((), value)]
    while stack and len(out) < MAX_FINDINGS:
        path, v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if refused_chars(k):
                    out.append(
                        Finding(
                            file, 0, pointer(path), "descriptor-schema", f"a key contains invisible or control characters ({', '.join(refused_chars(k)[:4])})"
                        )
                    )
                stack.append(((*path, k), x))
        elif isinstance(v, list):
            stack += [((*path, i), x) for i, x in enumerate(v)]
        elif isinstance(v, str) and refused_chars(v):
            out.append(
                Finding(file, 0, pointer(path), "descriptor-schema", f"the text contains invisible or control characters ({', '.join(refused_chars(v)[:4])})")
            )
    return sorted(out, key=lambda f: f.column)


def _names(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def schema_structure_findings(schema: dict, file: str) -> list[Finding]:
    """Within one schema (already profile-valid): duplicate field names, keys naming no field, invalid patterns."""
    out = []
    names = [f["name"] for f in schema["fields"]]
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            out.append(Finding(file, 0, pointer(("fields", i, "name")), "descriptor-reference", f'the field name "{name}" appears twice'))
        if name in RESERVED_FIELD_NAMES:
            out.append(Finding(file, 0, pointer(("fields", i, "name")), "descriptor-reference", f'"{name}" is reserved by DuckDB; choose another field name'))
        seen.add(name)
    for i, key in enumerate(_names(schema.get("primaryKey", []))):
        if key not in seen:
            out.append(Finding(file, 0, pointer(("primaryKey", i)), "descriptor-reference", f'the primary key names "{key}", which is not a field'))
    for i, fk in enumerate(schema.get("foreignKeys", [])):
        for j, key in enumerate(_names(fk["fields"])):
            if key not in seen:
                out.append(
                    Finding(file, 0, pointer(("foreignKeys", i, "fields", j)), "descriptor-reference", f'the foreign key names "{key}", which is not a field')
                )
        if len(_names(fk["fields"])) != len(_names(fk["reference"]["fields"])):
            out.append(
                Finding(file, 0, pointer(("foreignKeys", i)), "descriptor-reference", "the foreign key and its reference name different numbers of fields")
            )
    # the project's derivation keys name fields of this table; a wrong name would reach SQL as a missing column
    own = [
        (("x-review-from", "key"), schema.get("x-review-from", {}).get("key")),
        (("x-review-from", "table_field"), schema.get("x-review-from", {}).get("table_field")),
        (("x-derived-rows", "key"), schema.get("x-derived-rows", {}).get("key")),
        (("x-derived-rows", "class_field"), schema.get("x-derived-rows", {}).get("class_field")),
    ]
    own += [(("x-derived-columns", i, "from"), spec.get("from")) for i, spec in enumerate(schema.get("x-derived-columns", []))]
    own += [(("fields", i, "x-applies-to", "field"), f.get("x-applies-to", {}).get("field")) for i, f in enumerate(schema["fields"])]
    for path, key in own:
        if key is not None and key not in seen:
            out.append(Finding(file, 0, pointer(path), "descriptor-reference", f'"{key}" is not a field of this schema'))
    types = {f["name"]: f.get("type", "string") for f in schema["fields"]}
    release_added = {"confidence", "last_reviewed", "reviewers", "review_status", "stale", "derived", "rowid"}
    release_added |= {f["name"] + "_precision" for f in schema["fields"] if f.get("x-date-precision")}
    derived_names = [spec.get("name") for spec in schema.get("x-derived-columns", [])]
    for i, spec in enumerate(schema.get("x-derived-columns", [])):
        if spec.get("name") in release_added or derived_names.count(spec.get("name")) > 1:
            out.append(
                Finding(
                    file,
                    0,
                    pointer(("x-derived-columns", i, "name")),
                    "descriptor-reference",
                    f'the derived column "{spec.get("name")}" repeats a column the release has',
                )
            )
        if spec.get("from") in types and types[spec["from"]] != "integer":
            out.append(
                Finding(
                    file,
                    0,
                    pointer(("x-derived-columns", i, "from")),
                    "descriptor-reference",
                    f'"{spec["from"]}" is not an integer field, so no range can hold it',
                )
            )
    rows = schema.get("x-derived-rows")
    if rows and types.get(rows.get("class_field")) != "string":
        out.append(Finding(file, 0, pointer(("x-derived-rows", "class_field")), "descriptor-reference", "class_field must name a string field"))
    if rows and rows.get("class_field") == rows.get("key"):
        out.append(Finding(file, 0, pointer(("x-derived-rows", "class_field")), "descriptor-reference", "class_field and key must be different fields"))
    for i, f in enumerate(schema["fields"]):
        if f.get("x-date-precision") and f.get("type", "string") != "string":
            out.append(
                Finding(
                    file,
                    0,
                    pointer(("fields", i, "x-date-precision")),
                    "descriptor-reference",
                    "x-date-precision applies only to a string field holding an ISO date",
                )
            )
    review = schema.get("x-review-from", {})
    if review.get("table_field") and types.get(review["table_field"]) != "string":
        out.append(
            Finding(file, 0, pointer(("x-review-from", "table_field")), "descriptor-reference", "table_field must name a string field holding table names")
        )
    for i, spec in enumerate(schema.get("x-derived-columns", [])):
        if spec.get("name") in seen:
            out.append(
                Finding(file, 0, pointer(("x-derived-columns", i, "name")), "descriptor-reference", f'the derived column "{spec["name"]}" repeats a field name')
            )
    _prime_patterns([f["constraints"]["pattern"] for f in schema["fields"] if "pattern" in f.get("constraints", {})])
    for i, f in enumerate(schema["fields"]):
        pattern = f.get("constraints", {}).get("pattern")
        if pattern is not None:
            problem = pattern_problem(pattern)
            if problem:
                out.append(Finding(file, 0, pointer(("fields", i, "constraints", "pattern")), "invalid-pattern", problem))
        c = f.get("constraints", {})
        if f["type"] == "integer":
            for bound in ("minimum", "maximum"):
                if bound in c and not isinstance(c[bound], int):
                    out.append(
                        Finding(
                            file,
                            0,
                            pointer(("fields", i, "constraints", bound)),
                            "descriptor-schema",
                            f"the {bound} of an integer field must be a whole number",
                        )
                    )
        elif f["type"] != "number":
            for bound in ("minimum", "maximum"):
                if bound in c:
                    out.append(
                        Finding(
                            file, 0, pointer(("fields", i, "constraints", bound)), "descriptor-schema", f"{bound} applies only to integer and number fields"
                        )
                    )
    return out


@cache
def _regex_con():
    from pipelines.package.duck import open_duckdb

    return open_duckdb()


_RE2_ACCEPTS: set[str] = set()


def _prime_patterns(patterns: list[str]) -> None:
    """Compile a schema's patterns in RE2 in one statement (one per pattern costs a round trip each);
    if any fails, none is recorded and pattern_problem tries them one by one to name the culprit."""
    import duckdb

    todo = sorted(set(patterns) - _RE2_ACCEPTS)
    if not todo:
        return
    try:
        _regex_con().execute("SELECT " + ", ".join(["regexp_full_match('', ?)"] * len(todo)), todo).fetchall()
    except duckdb.Error:
        return
    _RE2_ACCEPTS.update(todo)


def _re_parse(pattern: str) -> None:
    try:
        from re import _parser as parser  # Python 3.11+
    except ImportError:  # pragma: no cover
        import sre_parse as parser
    parser.parse(pattern)


def pattern_problem(pattern: str) -> str | None:
    """Why a schema pattern cannot be used, or None. It must compile in Python and in DuckDB's RE2,
    and hold no construct the two read differently (Python warns of those: a POSIX class such as
    [[:alpha:]] is a class in RE2 and a set followed by a literal ] in Python)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            _re_parse(pattern)  # the parser itself: re.compile's cache would hide the warning the second time
            re.compile(pattern)
    except FutureWarning as exc:
        return f"the pattern means different things to Python and to DuckDB's RE2 ({_short(str(exc), 80)}); write it without POSIX classes or nested sets"
    except (re.error, RecursionError, OverflowError) as exc:
        return f"the pattern is not a valid regular expression: {_short(str(exc), 120)}"
    import duckdb

    if pattern in _RE2_ACCEPTS:
        return None
    con = _regex_con()
    try:
        con.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return f"the pattern is not a regular expression DuckDB (RE2) accepts: {_short(str(exc).splitlines()[0], 120)}"
    return None


def cross_schema_findings(schemas: dict[str, tuple[str, dict]]) -> list[Finding]:
    """Foreign keys against the resources they point at: schemas maps resource name -> (schema file, schema)."""
    out = []
    for name, (file, schema) in schemas.items():
        for i, fk in enumerate(schema.get("foreignKeys", [])):
            target = fk["reference"].get("resource") or name
            if target not in schemas:
                out.append(
                    Finding(
                        file,
                        0,
                        pointer(("foreignKeys", i, "reference", "resource")),
                        "descriptor-reference",
                        f'the foreign key points at "{target}", which is not a resource',
                    )
                )
                continue
            fields = {f["name"] for f in schemas[target][1]["fields"]}
            for j, key in enumerate(_names(fk["reference"]["fields"])):
                if key not in fields:
                    out.append(
                        Finding(
                            file,
                            0,
                            pointer(("foreignKeys", i, "reference", "fields", j)),
                            "descriptor-reference",
                            f'the foreign key points at "{target}.{key}", which is not a field of {target}',
                        )
                    )
    return out


def derived_rows_findings(schemas: dict[str, tuple[str, dict]]) -> list[Finding]:
    """x-derived-rows reads another table's count column: both must exist."""
    out = []
    for file, schema in schemas.values():
        review = schema.get("x-review-from", {})
        if review.get("table") and review["table"] not in schemas:
            out.append(Finding(file, 0, pointer(("x-review-from", "table")), "descriptor-reference", f'"{review["table"]}" is not a resource'))
        rows = schema.get("x-derived-rows")
        if not rows:
            continue
        other = schemas.get(rows["table"])
        if other is None:
            out.append(Finding(file, 0, pointer(("x-derived-rows", "table")), "descriptor-reference", f'"{rows["table"]}" is not a resource'))
        elif rows["from"] not in {f["name"] for f in other[1]["fields"]}:
            out.append(Finding(file, 0, pointer(("x-derived-rows", "from")), "descriptor-reference", f'"{rows["from"]}" is not a field of {rows["table"]}'))
    return out


def descriptor_structure_findings(descriptor: dict, file: str) -> list[Finding]:
    """Within the (profile-valid) descriptor: duplicate resource names and paths."""
    out = []
    names: set[str] = set()
    paths: set[str] = set()
    for i, res in enumerate(descriptor["resources"]):
        if res["name"] in names:
            out.append(Finding(file, 0, pointer(("resources", i, "name")), "descriptor-reference", f'the resource name "{res["name"]}" appears twice'))
        if res["name"] in RESERVED_NAMES:
            out.append(
                Finding(
                    file, 0, pointer(("resources", i, "name")), "descriptor-reference", f'"{res["name"]}" is the name of a table or view every release adds'
                )
            )
        if res["path"] in paths:
            out.append(
                Finding(file, 0, pointer(("resources", i, "path")), "descriptor-reference", f'the path "{_short(res["path"], 80)}" belongs to two resources')
            )
        names.add(res["name"])
        paths.add(res["path"])
    return out
