"""Round 3: what an attacker with only the README and SECURITY.md found in ingest, from-config, crosscheck,
coverage, the site and the new schema keys, each kept as a test with its payload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import AS_OF, findings_json, run_cli, valid_package

# every package here is built from tests/fixtures: no test reads the checkout's data/ (see tests/test_whole_suite.py)
pytestmark = pytest.mark.fixtures_only


def _pkg(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    return valid_package(tmp_path / "pkg")


def _append(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _codes(root: Path) -> set[tuple]:
    code, report = findings_json(root)
    return {(f["file"], f["column"], f["code"]) for f in report["findings"]}


INPUT_COMMANDS = [
    ["from-config", "{input}", "--model-id", "a-b", "--source-id", "s"],
    ["crosscheck", "{input}", "--format", "json"],
    ["ingest", "{input}", "--reviewer", "a", "--dry-run"],
]


def _run_input_command(argv: list[str], path: Path, tmp_path: Path):
    argv = [a.replace("{input}", str(path)) for a in argv]
    return run_cli(*argv, "--root", str(_pkg(tmp_path))) if argv[0] == "ingest" else run_cli(*argv, cwd=_pkg(tmp_path))


@pytest.mark.parametrize("argv", INPUT_COMMANDS)
def test_an_input_file_over_the_limit_is_refused_without_reading_it_all(argv, tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(64 * 1024 * 1024 + 1)  # sparse: 64 MiB and one byte of zeros
    proc = _run_input_command(argv, big, tmp_path)
    assert proc.returncode in (1, 2)
    assert "larger than the 64 MiB limit" in proc.stderr


@pytest.mark.parametrize("argv", INPUT_COMMANDS)
@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_an_input_that_is_not_a_regular_file_is_refused_at_once(argv, kind, tmp_path):
    """A FIFO made every input command wait forever (attack round 4); /dev/zero never ends."""
    import os

    if kind == "fifo":
        path = tmp_path / "pipe.json"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero") if kind == "device" else tmp_path
    proc = _run_input_command(argv, path, tmp_path)  # run_cli's timeout fails the test if it blocks
    assert proc.returncode in (1, 2)
    assert "not a regular file" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "record, says",
    [
        ({"model_id": "a-b", "classes": [{"x": 1}]}, "every item of classes must be a string"),
        ({"model_id": "a-b", "architecture": [1]}, "architecture must be a JSON object"),
        ({"model_id": 5}, "no model_id"),
        ({"model_id": "a-b", "classes": "llm"}, "classes must be a JSON list"),
    ],
)
def test_ingest_refuses_records_of_the_wrong_shape(record, says, tmp_path):
    root = _pkg(tmp_path)
    before = {p.name: p.read_bytes() for p in (root / "data").iterdir()}
    rec = tmp_path / "r.jsonl"
    rec.write_text(json.dumps(record) + "\n", encoding="utf-8")
    proc = run_cli("ingest", str(rec), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1 and says in proc.stderr
    assert {p.name: p.read_bytes() for p in (root / "data").iterdir()} == before


def test_ingest_refuses_json_nested_too_deeply(tmp_path):
    root = _pkg(tmp_path)
    rec = tmp_path / "deep.jsonl"
    rec.write_text("[" * 100_000 + "\n", encoding="utf-8")
    proc = run_cli("ingest", str(rec), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1 and "nested too deeply" in proc.stderr


def test_two_history_values_on_one_date_are_refused_before_build(tmp_path):
    root = _pkg(tmp_path)
    _append(root / "data/fact_history.csv", "sparse-8x1b,context_length,2024-03-01,16384,example-paper,Table 2")
    assert ("data/fact_history.csv", "effective_on", "history-duplicate") in _codes(root)
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(tmp_path / "dist"))
    assert proc.returncode == 1 and "internal error" not in proc.stderr


def test_a_history_value_in_the_future_is_refused(tmp_path):
    root = _pkg(tmp_path)
    text = (root / "data/fact_history.csv").read_text(encoding="utf-8").replace("2024-09-02,32768", "2999-01-01,32768")
    (root / "data/fact_history.csv").write_text(text, encoding="utf-8")
    assert ("data/fact_history.csv", "effective_on", "future-date") in _codes(root)


def test_a_rule_that_excludes_a_class_from_itself_is_one_rule_error(tmp_path):
    root = _pkg(tmp_path)
    _append(root / "data/class_rules.csv", "self,excludes,mixture-of-experts,mixture-of-experts,,A rule that cannot hold.")
    codes = _codes(root)
    assert ("data/class_rules.csv", "value", "class-rule-incomplete") in codes
    assert not any(c[2] == "class-exclusion" for c in codes)


def _edit_schema(root: Path, name: str, edit) -> None:
    path = root / "schemas" / f"{name}.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    edit(schema)
    path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    "edit, pointer",
    [
        (lambda s: s["x-derived-columns"][0].update(name="rowid"), "/x-derived-columns/0/name"),
        (lambda s: s["x-derived-columns"][0].update(name="confidence"), "/x-derived-columns/0/name"),
        (lambda s: s["x-derived-columns"].append(dict(s["x-derived-columns"][0])), "/x-derived-columns/1/name"),
        (lambda s: s["x-derived-columns"][0].update(**{"from": "summary"}), "/x-derived-columns/0/from"),
        (lambda s: next(f for f in s["fields"] if f["name"] == "params_total").update({"x-date-precision": ["day"]}), "x-date-precision"),
        (lambda s: s.update({"x-review-from": {"table": "nowhere", "key": "model_id"}}), "/x-review-from/table"),
    ],
)
def test_derivation_keys_that_would_break_the_build_are_refused_with_a_pointer(edit, pointer, tmp_path):
    root = _pkg(tmp_path)
    _edit_schema(root, "models", edit)
    proc = run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--format", "json")
    assert proc.returncode == 2, proc.stdout
    assert pointer in proc.stdout


def test_x_applies_to_must_name_an_existing_class(tmp_path):
    root = _pkg(tmp_path)
    _edit_schema(root, "models", lambda s: next(f for f in s["fields"] if f["name"] == "params_active").update({"x-applies-to": {"class": "no-such-class"}}))
    assert ("schemas/models.json", "params_active", "descriptor-reference") in _codes(root)


def test_coverage_refuses_to_count_invalid_data(tmp_path):
    root = _pkg(tmp_path)
    text = (root / "data/models.csv").read_text(encoding="utf-8").replace("7000000000,,8192", "lots,,8192")
    (root / "data/models.csv").write_text(text, encoding="utf-8")
    proc = run_cli("coverage", "--root", str(root), "--as-of", AS_OF)
    assert proc.returncode == 1 and "run model-atlas validate" in proc.stderr and proc.stdout == ""


def test_build_refuses_to_write_into_dot_git(tmp_path):
    root = _pkg(tmp_path)
    (root / ".git").mkdir()
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(root / ".git"))
    assert proc.returncode == 2 and ".git" in proc.stderr
    assert list((root / ".git").iterdir()) == []


def test_crosscheck_escapes_hostile_ids(tmp_path):
    root = _pkg(tmp_path)
    export = tmp_path / "export.json"
    hostile = "x\u202e\x1b[31m`<img src=x onerror=alert(1)>"
    export.write_text(json.dumps([{"id": hostile, "name": hostile, "limit": {"context": 5}}]), encoding="utf-8")
    proc = run_cli("crosscheck", str(export), "--format", "json", "--list-unmatched", cwd=root)
    assert proc.returncode in (0, 1), proc.stderr
    assert "\u202e" not in proc.stdout and "\x1b" not in proc.stdout and "<img" not in proc.stdout


@pytest.mark.parametrize("target", ["data", ".git", ".", "data/sub"])
def test_site_refuses_package_directories_even_with_a_marker_file(tmp_path, target):
    """Round 4: a committed .model-atlas-site file must not turn data/, .git or the checkout into a site to replace."""
    root = _pkg(tmp_path)
    (root / ".git").mkdir()
    dist = tmp_path / "dist"
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(dist), "--version", "1.0.0").returncode == 0
    (root / target).mkdir(exist_ok=True)
    (root / target / ".model-atlas-site").write_text("", encoding="utf-8")
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    proc = run_cli("site", "--release", str(dist / "model-atlas-1.0.0"), "--out", str(root / target))
    assert proc.returncode == 2 and proc.stderr.startswith("error: --out"), proc.stdout + proc.stderr
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before


def test_site_refuses_an_empty_out(tmp_path):
    proc = run_cli("site", "--release", str(tmp_path), "--out", "", cwd=tmp_path)
    assert proc.returncode == 2 and "--out is empty" in proc.stderr


@pytest.mark.parametrize("tool", ["ingest", "from-config", "crosscheck"])
def test_a_number_too_long_to_convert_is_a_located_error(tool, tmp_path):
    root = _pkg(tmp_path)
    f = tmp_path / ("r.jsonl" if tool == "ingest" else "x.json")
    body = {"ingest": '{"model_id":"x","params_total":%s}', "from-config": '{"max_position_embeddings":%s}', "crosscheck": '{"m":{"max_input_tokens":%s}}'}[
        tool
    ]
    f.write_text(body % ("9" * 5000) + "\n", encoding="utf-8")
    argv = {
        "ingest": ["ingest", str(f), "--root", str(root), "--reviewer", "model-atlas-curators", "--dry-run"],
        "from-config": ["from-config", str(f), "--model-id", "a-b", "--source-id", "s"],
        "crosscheck": ["crosscheck", str(f), "--format", "json"],
    }[tool]
    proc = run_cli(*argv, cwd=root)
    assert proc.returncode in (1, 2) and "internal error" not in proc.stderr and str(f) in proc.stderr


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30, 1.5, True, "99999999999999999999999"])
def test_ingest_refuses_a_count_no_64_bit_column_holds(value, tmp_path):
    """Attack round 4: ingest wrote counts beyond 64 bits that validate then rejected."""
    root = _pkg(tmp_path)
    before = {p.name: p.read_bytes() for p in (root / "data").iterdir()}
    rec = tmp_path / "r.jsonl"
    rec.write_text(
        json.dumps({"model_id": "a-b", "name": "A B", "kind": "model", "organization": "X", "architecture": {"layers": value}}) + "\n", encoding="utf-8"
    )
    proc = run_cli("ingest", str(rec), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1 and "layers is" in proc.stderr and "64-bit integer column" in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in (root / "data").iterdir()} == before


def test_from_config_leaves_out_a_count_beyond_64_bits(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"num_hidden_layers": 2**64, "hidden_size": 4096}), encoding="utf-8")
    proc = run_cli("from-config", str(config), "--model-id", "a-b", "--source-id", "s", cwd=_pkg(tmp_path))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert "layers" not in record.get("architecture", {}) and record["architecture"]["hidden_size"] == 4096
    assert "more than a 64-bit integer column holds" in proc.stderr


@pytest.mark.parametrize("name", ["=HYPERLINK(1).json", "a\u202eb.json", " config.json", "-cfg.json"])
def test_from_config_never_copies_an_odd_file_name_into_locators(name, tmp_path):
    """Attack round 4: the default locator prefix was the file's name, whatever it held."""
    config = tmp_path / name
    config.write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 64}), encoding="utf-8")
    proc = run_cli("from-config", "--model-id", "a-b", "--source-id", "s", "--", str(config), cwd=_pkg(tmp_path))
    assert proc.returncode == 0, proc.stderr
    locators = [c["locator"] for c in json.loads(proc.stdout)["citations"].values()]
    assert locators and all(loc.startswith("config file ") for loc in locators), locators


def test_from_config_keeps_a_plain_file_name_as_the_locator_prefix(tmp_path):
    config = tmp_path / "params.json"
    config.write_text(json.dumps({"n_layers": 2, "dim": 64}), encoding="utf-8")
    proc = run_cli("from-config", str(config), "--model-id", "a-b", "--source-id", "s", cwd=_pkg(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert all(c["locator"].startswith("params.json ") for c in json.loads(proc.stdout)["citations"].values())


@pytest.mark.parametrize("argv", INPUT_COMMANDS)
def test_json_of_millions_of_tiny_values_is_refused_before_parsing(argv, tmp_path):
    """Attack round 4: 60 MiB of [{},{},...] took 25-30 times its size in memory to parse."""
    import subprocess

    from conftest import cli_path

    path = tmp_path / "many.json"
    body = ",".join(["{}"] * 3_000_000)
    path.write_text(("[" + body + "]") if argv[0] != "ingest" else '{"model_id": "a-b", "x": [' + body + "]}\n", encoding="utf-8")
    argv = [a.replace("{input}", str(path)) for a in argv]
    root = _pkg(tmp_path)
    cmd = [cli_path(), *argv, "--root", str(root)] if argv[0] == "ingest" else [cli_path(), *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root if argv[0] != "ingest" else None, timeout=120)
    assert proc.returncode in (1, 2)
    assert "value separators and brackets" in proc.stderr and "the limit is 2,000,000" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", INPUT_COMMANDS)
def test_json_of_nested_empty_arrays_is_refused_before_parsing(argv, tmp_path):
    """Attack round 5: [[[...]]] holds no separator, and 61 MB of it took about 3 GB to parse."""
    element = "[" * 900 + "]" * 900
    body = ",".join([element] * 3000)  # 5.4 MB, 2.7 million brackets, 3,000 separators
    path = tmp_path / "nested.json"
    path.write_text(('{"x": [' + body + "]}") + ("\n" if argv[0] == "ingest" else ""), encoding="utf-8")
    proc = _run_input_command(argv, path, tmp_path)
    assert proc.returncode in (1, 2)
    assert "value separators and brackets" in proc.stderr, proc.stderr


def test_an_ingest_update_with_a_conflict_writes_no_review_and_unknown_keys_are_refused(tmp_path):
    """Attack round 5: a conflicting update still wrote a 'confirmed' review; unknown keys passed silently."""
    root = _pkg(tmp_path)
    reviews = (root / "data" / "reviews.csv").read_text(encoding="utf-8")
    rec = tmp_path / "u.jsonl"
    rec.write_text(json.dumps({"model_id": "dense-7b", "update": True, "name": "Evil"}) + "\n", encoding="utf-8")
    proc = run_cli("ingest", str(rec), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1 and "conflict (not changed)" in proc.stdout and "no review written for dense-7b" in proc.stdout
    assert (root / "data" / "reviews.csv").read_text(encoding="utf-8") == reviews
    rec.write_text(json.dumps({"model_id": "dense-7b", "update": True, "contxt_length": 5, "zzz": "=cmd"}) + "\n", encoding="utf-8")
    proc = run_cli("ingest", str(rec), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1 and "unknown key(s) 'contxt_length', 'zzz'" in proc.stderr, proc.stderr
    assert (root / "data" / "reviews.csv").read_text(encoding="utf-8") == reviews


@pytest.mark.parametrize("value", ["١٢٣", " 5 ", "5 ", "+", ""])
def test_ingest_refuses_a_count_string_that_is_not_plain_digits(value, tmp_path):
    root = _pkg(tmp_path)
    rec = tmp_path / "r.jsonl"
    rec.write_text(json.dumps({"model_id": "dense-7b", "update": True, "max_output_tokens": value}) + "\n", encoding="utf-8")
    proc = run_cli("ingest", str(rec), "--root", str(root), "--reviewer", "model-atlas-curators")
    if value == "":
        assert proc.returncode in (0, 1)  # an empty value states nothing
    else:
        assert proc.returncode == 1 and "64-bit integer column" in proc.stderr, proc.stderr


@pytest.mark.parametrize("argv", INPUT_COMMANDS[:2])
@pytest.mark.parametrize(
    "text, says",
    [('{"a-b": {"x": 1}, "a-b": {"x": 2}}', "appears twice in one object"), ('{"a-b": {"context_length": NaN}}', "NaN is not a JSON number")],
)
def test_json_with_a_repeated_key_or_nan_is_refused(argv, text, says, tmp_path):
    """Attack round 5: crosscheck silently kept one of two entries under one key and counted NaN as a fact."""
    path = tmp_path / "in.json"
    path.write_text(text, encoding="utf-8")
    proc = _run_input_command(argv, path, tmp_path)
    assert proc.returncode in (1, 2) and says in proc.stderr, proc.stderr


@pytest.mark.parametrize("which", ["records", "sources"])
@pytest.mark.parametrize(
    "text, says",
    [
        ('{"model_id": "dense-7b", "update": false, "update": true}', "appears twice in one object"),
        ('{"model_id": "dense-7b", "update": true, "note": Infinity}', "Infinity is not a JSON number"),
        ('{"model_id": "dense-7b", "update": true, "note": NaN}', "NaN is not a JSON number"),
        ('{"model_id": "dense-7b", "update": true, "note": 1e400}', "too large for a JSON number"),
    ],
)
def test_ingest_refuses_repeated_keys_and_non_finite_numbers(which, text, says, tmp_path):
    """Attack round 6: ingest's own line reader let these through into the CSV files as text."""
    root = _pkg(tmp_path)
    before = {p.name: p.read_bytes() for p in (root / "data").iterdir()}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text + "\n", encoding="utf-8")
    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps({"model_id": "dense-7b", "update": True, "note": "Read the card."}) + "\n", encoding="utf-8")
    args = [str(bad)] if which == "records" else [str(ok), "--sources", str(bad)]
    proc = run_cli("ingest", *args, "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1 and says in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in (root / "data").iterdir()} == before
