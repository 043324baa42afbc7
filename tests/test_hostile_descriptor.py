"""Hostile descriptors and schemas: every name is data, every malformed structure is a located finding.

Each case edits the valid package's datapackage.json or one schema, runs the real CLI, and requires
exit 2 with a finding at a JSON Pointer, no traceback and no "internal error", and no file written
anywhere (a canary path that an injected COPY would create stays absent).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import AS_OF, run_cli, valid_package

# every package here is built from tests/fixtures: no test reads the checkout's data/ (see tests/test_whole_suite.py)
pytestmark = pytest.mark.fixtures_only

CANARY = "/tmp/model-atlas-canary-{}.pth"


def _edit(root: Path, rel: str, change) -> None:
    path = root / rel
    value = json.loads(path.read_text(encoding="utf-8"))
    result = change(value)  # edits in place; a list returned replaces the whole document
    value = result if isinstance(result, list) else value
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


def _field_index(schema: dict, name: str) -> int:
    return [f["name"] for f in schema["fields"]].index(name)


def _set(obj: dict, key, value):
    obj[key] = value


def _inject(tag: str) -> str:
    """A name that, pasted into SQL, would close the statement and write a file."""
    return f"models\"; COPY (SELECT 1) TO '{CANARY.format(tag)}'; --"


# (case id, file edited, edit, expected (file, column, code))
CASES = [
    (
        "resource-name-injection",
        "datapackage.json",
        lambda d: _set(d["resources"][1], "name", _inject("resource")),
        ("datapackage.json", "/resources/1/name", "descriptor-schema"),
    ),
    (
        "field-name-injection",
        "schemas/models.json",
        lambda s: _set(s["fields"][1], "name", _inject("field")),
        ("schemas/models.json", "/fields/1/name", "descriptor-schema"),
    ),
    (
        "primary-key-injection",
        "schemas/models.json",
        lambda s: _set(s, "primaryKey", [_inject("pk")]),
        ("schemas/models.json", "/primaryKey/0", "descriptor-schema"),
    ),
    (
        "reference-resource-injection",
        "schemas/model_classes.json",
        lambda s: _set(s["foreignKeys"][0]["reference"], "resource", _inject("ref")),
        ("schemas/model_classes.json", "/foreignKeys/0/reference/resource", "descriptor-schema"),
    ),
    (
        "reference-field-injection",
        "schemas/model_classes.json",
        lambda s: _set(s["foreignKeys"][0]["reference"], "fields", [_inject("reffield")]),
        ("schemas/model_classes.json", "/foreignKeys/0/reference/fields/0", "descriptor-schema"),
    ),
    ("schema-is-a-list", "schemas/model_relations.json", lambda s: [s], ("schemas/model_relations.json", "/", "descriptor-schema")),
    ("field-without-name", "schemas/models.json", lambda s: s["fields"][1].pop("name"), ("schemas/models.json", "/fields/1", "descriptor-schema")),
    (
        "invalid-regex",
        "schemas/models.json",
        lambda s: _set(s["fields"][0]["constraints"], "pattern", "^[a-z"),
        ("schemas/models.json", "/fields/0/constraints/pattern", "invalid-pattern"),
    ),
    (
        "regex-posix-class",
        "schemas/models.json",
        lambda s: _set(s["fields"][0]["constraints"], "pattern", "[[:alpha:]]+"),
        ("schemas/models.json", "/fields/0/constraints/pattern", "invalid-pattern"),
    ),
    (
        "regex-re2-refuses",
        "schemas/models.json",
        lambda s: _set(s["fields"][0]["constraints"], "pattern", "^(?=a)[a-z]+$"),
        ("schemas/models.json", "/fields/0/constraints/pattern", "invalid-pattern"),
    ),
    (
        "non-numeric-bound",
        "schemas/models.json",
        lambda s: _set(s["fields"][_field_index(s, "params_total")]["constraints"], "minimum", "1"),
        ("schemas/models.json", "/fields/{params_total}/constraints/minimum", "descriptor-schema"),
    ),
    (
        "fractional-bound-on-integer",
        "schemas/models.json",
        lambda s: _set(s["fields"][_field_index(s, "params_total")]["constraints"], "minimum", 0.5),
        ("schemas/models.json", "/fields/{params_total}/constraints/minimum", "descriptor-schema"),
    ),
    (
        "bound-beyond-64-bit",
        "schemas/models.json",
        lambda s: _set(s["fields"][_field_index(s, "params_total")]["constraints"], "maximum", 10**30),
        ("schemas/models.json", "/fields/{params_total}/constraints/maximum", "descriptor-schema"),
    ),
    (
        "primary-key-names-no-field",
        "schemas/models.json",
        lambda s: _set(s, "primaryKey", ["no_such_field"]),
        ("schemas/models.json", "/primaryKey/0", "descriptor-reference"),
    ),
    (
        "foreign-key-without-reference",
        "schemas/model_classes.json",
        lambda s: s["foreignKeys"][0].pop("reference"),
        ("schemas/model_classes.json", "/foreignKeys/0", "descriptor-schema"),
    ),
    (
        "foreign-key-to-unknown-resource",
        "schemas/model_classes.json",
        lambda s: _set(s["foreignKeys"][0]["reference"], "resource", "no_such_table"),
        ("schemas/model_classes.json", "/foreignKeys/0/reference/resource", "descriptor-reference"),
    ),
    (
        "foreign-key-to-unknown-field",
        "schemas/model_classes.json",
        lambda s: _set(s["foreignKeys"][0]["reference"], "fields", ["no_such_field"]),
        ("schemas/model_classes.json", "/foreignKeys/0/reference/fields/0", "descriptor-reference"),
    ),
    (
        "foreign-key-field-count",
        "schemas/model_classes.json",
        lambda s: _set(s["foreignKeys"][0], "fields", ["model_id", "class_id"]),
        ("schemas/model_classes.json", "/foreignKeys/0", "descriptor-reference"),
    ),
    (
        "duplicated-resource-names",
        "datapackage.json",
        lambda d: _set(d["resources"][2], "name", d["resources"][1]["name"]),
        ("datapackage.json", "/resources/2/name", "descriptor-reference"),
    ),
    (
        "duplicated-field-names",
        "schemas/models.json",
        lambda s: _set(s["fields"][2], "name", s["fields"][1]["name"]),
        ("schemas/models.json", "/fields/2/name", "descriptor-reference"),
    ),
    (
        "resource-named-like-a-release-table",
        "datapackage.json",
        lambda d: _set(d["resources"][3], "name", "release_info"),
        ("datapackage.json", "/resources/3/name", "descriptor-reference"),
    ),
    (
        "field-named-rowid",
        "schemas/model_relations.json",
        lambda s: _set(s["fields"][1], "name", "rowid"),
        ("schemas/model_relations.json", "/fields/1/name", "descriptor-reference"),
    ),
    (
        "bidi-override-in-a-description",
        "schemas/model_relations.json",
        lambda s: _set(s["fields"][1], "description", "Relation \u202e kind"),
        ("schemas/model_relations.json", "/fields/1/description", "descriptor-schema"),
    ),
    (
        "nul-in-an-enum-value",
        "schemas/models.json",
        lambda s: _set(s["fields"][_field_index(s, "kind")]["constraints"], "enum", ["model", "x\u0000y"]),
        ("schemas/models.json", "/fields/{kind}/constraints/enum/1", "descriptor-schema"),
    ),
    (
        "line-separator-in-a-title",
        "datapackage.json",
        lambda d: _set(d["resources"][0], "title", "Classes\u2028# injected"),
        ("datapackage.json", "/resources/0/title", "descriptor-schema"),
    ),
    ("policy-is-a-list", "datapackage.json", lambda d: _set(d, "x-model-atlas", []), ("datapackage.json", "/x-model-atlas", "descriptor-schema")),
    (
        "policy-limit-is-text",
        "datapackage.json",
        lambda d: _set(d["x-model-atlas"]["limits"], "cell_chars", "2000"),
        ("datapackage.json", "/x-model-atlas/limits/cell_chars", "descriptor-schema"),
    ),
    (
        "policy-staleness-is-text",
        "datapackage.json",
        lambda d: _set(d["x-model-atlas"]["staleness"]["default"]["high"], "warn_after_days", "soon"),
        ("datapackage.json", "/x-model-atlas/staleness/default/high/warn_after_days", "descriptor-schema"),
    ),
    (
        "policy-file-limit-above-512-mib",
        "datapackage.json",
        lambda d: _set(d["x-model-atlas"]["limits"], "file_bytes", 2**40),
        ("datapackage.json", "/x-model-atlas/limits/file_bytes", "descriptor-schema"),
    ),
    (
        "policy-sparse-class-injection",
        "datapackage.json",
        lambda d: _set(d["x-model-atlas"], "sparse_class", "moe') OR 1=1 --"),
        ("datapackage.json", "/x-model-atlas/sparse_class", "descriptor-schema"),
    ),
    (
        "unknown-field-type",
        "schemas/models.json",
        lambda s: _set(s["fields"][1], "type", "varchar"),
        ("schemas/models.json", "/fields/1/type", "descriptor-schema"),
    ),
    (
        "datetime-field-type",
        "schemas/models.json",
        lambda s: _set(s["fields"][1], "type", "datetime"),
        ("schemas/models.json", "/fields/1/type", "descriptor-schema"),
    ),
    (
        "x-fact-is-text",
        "schemas/models.json",
        lambda s: _set(s["fields"][1], "x-fact", "yes"),
        ("schemas/models.json", "/fields/1/x-fact", "descriptor-schema"),
    ),
    (
        "x-date-precision-unknown",
        "schemas/models.json",
        lambda s: _set(s["fields"][1], "x-date-precision", ["week"]),
        ("schemas/models.json", "/fields/1/x-date-precision/0", "descriptor-schema"),
    ),
    ("unknown-field-key", "schemas/models.json", lambda s: _set(s["fields"][1], "format", "%Y"), ("schemas/models.json", "/fields/1", "descriptor-schema")),
    (
        "unknown-resource-key",
        "datapackage.json",
        lambda d: _set(d["resources"][0], "dialect", {"delimiter": ";"}),
        ("datapackage.json", "/resources/0", "descriptor-schema"),
    ),
    ("no-resources", "datapackage.json", lambda d: _set(d, "resources", []), ("datapackage.json", "/resources", "descriptor-schema")),
    ("version-climbs-out", "datapackage.json", lambda d: _set(d, "version", "../../../tmp/x"), ("datapackage.json", "/version", "descriptor-schema")),
    ("version-with-newline", "datapackage.json", lambda d: _set(d, "version", "1.0.0\n# injected"), ("datapackage.json", "/version", "descriptor-schema")),
    (
        "enum-of-numbers",
        "schemas/models.json",
        lambda s: _set(s["fields"][_field_index(s, "kind")]["constraints"], "enum", [1, 2]),
        ("schemas/models.json", "/fields/{kind}/constraints/enum/0", "descriptor-schema"),
    ),
    (
        "missing-values-other-than-empty",
        "schemas/models.json",
        lambda s: _set(s, "missingValues", ["NA"]),
        ("schemas/models.json", "/missingValues/0", "descriptor-schema"),
    ),
    (
        "resource-path-not-a-string",
        "datapackage.json",
        lambda d: _set(d["resources"][0], "path", ["data/classes.csv", "/etc/passwd"]),
        ("datapackage.json", "/resources/0/path", "descriptor-schema"),
    ),
]


def _expected_column(root: Path, rel: str, column: str) -> str:
    if "{" not in column:
        return column
    schema = json.loads((root / rel).read_text(encoding="utf-8"))
    return column.format(**{f["name"]: i for i, f in enumerate(schema["fields"])})


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_descriptor_or_schema_is_a_located_finding(tmp_path, case):
    _, rel, change, (file, column, code) = case
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    want_column = _expected_column(root, rel, column)
    _edit(root, rel, change)
    for tag in ("resource", "field", "pk", "ref", "reffield"):
        Path(CANARY.format(tag)).unlink(missing_ok=True)
    proc = run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--format", "json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert (file, want_column, code) in {(f["file"], f["column"], f["code"]) for f in findings}, findings
    build = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(tmp_path / "dist"))
    assert build.returncode == 2 and "internal error" not in build.stderr and want_column in build.stderr
    assert not any(Path(CANARY.format(t)).exists() for t in ("resource", "field", "pk", "ref", "reffield"))
    assert not (tmp_path / "dist").exists()


def test_every_command_refuses_a_malformed_descriptor_with_exit_2(tmp_path):
    root = valid_package(tmp_path)
    _edit(root, "datapackage.json", lambda d: _set(d["resources"][1], "name", _inject("every")))
    for args in (["stale"], ["fmt", "--check"], ["fmt"], ["diff", "HEAD"], ["new", "model", "--name", "X"]):
        proc = run_cli(args[0], "--root", str(root), *args[1:])
        assert proc.returncode in (1, 2), (args, proc.stdout, proc.stderr)
        assert "internal error" not in proc.stderr and "resources/1/name" in proc.stdout + proc.stderr, (args, proc.stderr)
    assert not Path(CANARY.format("every")).exists()


def test_json_nested_deeper_than_the_recursion_limit(tmp_path):
    root = valid_package(tmp_path)
    (root / "schemas" / "models.json").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    proc = run_cli("validate", "--root", str(root), "--format", "json")
    assert proc.returncode == 2
    assert [(f["file"], f["code"]) for f in json.loads(proc.stdout)["findings"]] == [("schemas/models.json", "descriptor-json")]
    (root / "schemas" / "models.json").write_text('{"fields": ' + "[" * 100 + "]" * 100 + "}", encoding="utf-8")
    proc = run_cli("validate", "--root", str(root), "--format", "json")
    assert proc.returncode == 2 and "nested deeper than 32" in proc.stdout


@pytest.mark.parametrize(
    "text,words",
    [
        ('{"fields": [], "fields": [{"name": "x", "type": "string"}]}', "appears twice"),
        ('{"fields": [{"name": "a", "type": "integer", "constraints": {"minimum": Infinity}}]}', "not a JSON number"),
        ('{"fields": [{"name": "a", "type": "integer", "constraints": {"minimum": NaN}}]}', "not a JSON number"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("", "invalid JSON"),
    ],
)
def test_strict_json_parsing(tmp_path, text, words):
    root = valid_package(tmp_path)
    target = root / "schemas" / "models.json"
    target.write_bytes(text if isinstance(text, bytes) else text.encode())
    proc = run_cli("validate", "--root", str(root), "--format", "json")
    assert proc.returncode == 2
    found = json.loads(proc.stdout)["findings"]
    assert found[0]["file"] == "schemas/models.json" and found[0]["code"] == "descriptor-json" and words in found[0]["message"], found


def test_oversized_descriptor_is_refused_unread(tmp_path):
    root = valid_package(tmp_path)
    desc = json.loads((root / "datapackage.json").read_text())
    desc["description"] = "x" * 3000
    desc["x-padding"] = ["y" * 1000] * 1100
    (root / "datapackage.json").write_text(json.dumps(desc))
    proc = run_cli("validate", "--root", str(root), "--format", "json")
    assert proc.returncode == 2 and "at most 1048576" in proc.stdout


def test_symlink_loops_under_data_and_schemas(tmp_path):
    root = valid_package(tmp_path)
    (root / "data" / "loop.csv").symlink_to(root / "data" / "loop.csv")
    proc = run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--format", "json")
    assert proc.returncode == 1
    assert ("data/loop.csv", "unlisted-file") in {(f["file"], f["code"]) for f in json.loads(proc.stdout)["findings"]}
    (root / "data" / "loop.csv").unlink()
    (root / "data" / "models.csv").unlink()
    (root / "data" / "models.csv").symlink_to(root / "data" / "models.csv")
    proc = run_cli("validate", "--root", str(root), "--format", "json")
    assert proc.returncode == 2
    assert [(f["column"], f["code"]) for f in json.loads(proc.stdout)["findings"]] == [("/resources/1/path", "path-outside-package")]
    (root / "data" / "a").symlink_to(root / "data" / "b")
    (root / "data" / "b").symlink_to(root / "data" / "a")
    (root / "schemas" / "models.json").unlink()
    (root / "schemas" / "models.json").symlink_to(root / "data" / "a")
    proc = run_cli("validate", "--root", str(root), "--format", "json")
    assert proc.returncode == 2 and "internal error" not in proc.stderr


@pytest.mark.parametrize("name", ["order", "select", "from", "group"])
def test_sql_keywords_are_ordinary_field_names(tmp_path, name):
    """Found while attacking: names are always quoted, so a keyword works end to end (validate, build, query)."""
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    schema = json.loads((root / "schemas" / "model_relations.json").read_text())
    old = schema["fields"][4]["name"]  # locator: a column no rule or view reads by name
    schema["fields"][4]["name"] = name
    schema["primaryKey"] = [name if k == old else k for k in schema["primaryKey"]]
    (root / "schemas" / "model_relations.json").write_text(json.dumps(schema, indent=2))
    head, rest = (root / "data" / "model_relations.csv").read_text().split("\n", 1)
    (root / "data" / "model_relations.csv").write_text(head.replace(old, name) + "\n" + rest)
    out = tmp_path / "dist"
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "1.0.0").returncode == 0
    proc = run_cli("query", "--release", str(out / "model-atlas-1.0.0"), f'SELECT "{name}" FROM model_relations')
    assert proc.returncode == 0 and "(1 row" in proc.stdout


def test_every_schema_and_the_descriptor_match_the_profiles():
    """The live package passes its own profiles (so a merge that breaks them fails here first)."""
    from conftest import REPO

    from pipelines.package.descriptor import load_package

    pkg = load_package(REPO)
    assert len(pkg.tables) >= 8


def test_reserved_names_cover_what_a_release_adds():
    from pipelines.package.profile import RESERVED_NAMES
    from pipelines.release.build import BOOKKEEPING_TABLES, VIEWS

    assert set(VIEWS) | BOOKKEEPING_TABLES <= RESERVED_NAMES


def test_profiles_are_valid_json_schemas():
    from jsonschema import Draft202012Validator

    from pipelines.package.profile import PROFILES

    for p in sorted(PROFILES.glob("*.json")):
        Draft202012Validator.check_schema(json.loads(p.read_text()))


def _mutations(doc):
    """The document with one value replaced at every place, by each of a few hostile values."""
    hostile = [None, 0, -1, 1.5, True, "", " x", "a" * 300, 'x"; --', "Ünïcødé", [], {}, ["x"], {"x-y": 1}]
    stack = [()]
    while stack:
        path = stack.pop()
        node = doc
        for key in path:
            node = node[key]
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        for key, _ in children:
            stack.append((*path, key))
        if not path:
            continue
        for value in hostile:
            copy = json.loads(json.dumps(doc))
            parent = copy
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = value
            yield path, copy
        if isinstance(node, dict):
            copy = json.loads(json.dumps(doc))
            parent = copy
            for key in path:
                parent = parent[key]
            parent["unknown"] = 1  # a key the profile does not allow (x- keys are allowed)
            yield path, copy


def test_the_fast_profile_check_agrees_with_the_reference_implementation():
    """profile_findings trusts jsonschema-rs when it says a document is valid, and asks
    python-jsonschema to locate the errors otherwise. Both must give the same verdict on the live
    descriptor and schemas and on thousands of one-value mutations of them."""
    from conftest import REPO

    from pipelines.package.profile import _fast_validator, _validator

    docs = [("datapackage.json", json.loads((REPO / "datapackage.json").read_text()))]
    docs += [("tableschema.json", json.loads(p.read_text())) for p in sorted((REPO / "schemas").glob("*.json"))[:4]]
    checked = invalid = 0
    for profile, doc in docs:
        fast, reference = _fast_validator(profile), _validator(profile)
        for path, mutated in _mutations(doc):
            verdict = reference.is_valid(mutated)
            assert fast.is_valid(mutated) == verdict, (profile, path, json.dumps(mutated)[:300])
            checked += 1
            invalid += not verdict
    print(f"{checked} documents, {invalid} invalid")
    assert checked > 2000 and invalid > 1000, (checked, invalid)
