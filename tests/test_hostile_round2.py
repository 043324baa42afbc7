"""Hostile input, round 2 (issue 12): locked engines, query limits, one type system, one character
policy, refs, versions, output paths, previous releases, verify, bounded reports, `new`, workflows.

Every test runs the real CLI on real files and carries its payload; none accepts a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import AS_OF, DEFECT_NAMES, REPO, defect_package, run_cli, valid_package

from pipelines.package import chars

# every package here is built from tests/fixtures: no test reads the checkout's data/ (see tests/test_whole_suite.py)
pytestmark = pytest.mark.fixtures_only


def pkg_in(tmp_path: Path, name: str) -> Path:
    """The valid package in a new directory tmp_path/name."""
    (tmp_path / name).mkdir()
    return valid_package(tmp_path / name)


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def write_rows(path: Path, rows: list[list[str]]) -> None:
    """Append rows to a CSV file with Python's writer (quoting what needs it)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())


def replace_cell(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8", newline="")


def findings(root: Path, *extra) -> tuple[int, set[tuple]]:
    proc = run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--format", "json", *extra)
    assert "internal error" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    return proc.returncode, {(f["file"], f["line"], f["column"], f["code"]) for f in report["findings"]}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = valid_package(tmp_path_factory.mktemp("pkg"))
    out = tmp_path_factory.mktemp("dist")
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "1.0.0")
    assert proc.returncode == 0, proc.stderr
    return out / "model-atlas-1.0.0"


# --- locked engines ----------------------------------------------------------------------------


def test_every_tool_connection_is_locked(tmp_path, release):
    from datetime import date

    from pipelines.checks.validate import connect_checked
    from pipelines.package.descriptor import load_package
    from pipelines.package.duck import locked, open_duckdb
    from pipelines.package.tables import connect_package
    from pipelines.release.query import connect_release

    root = valid_package(tmp_path)
    pkg = load_package(root)
    con, _, _ = connect_checked(pkg, date.fromisoformat(AS_OF))
    cons = [con, connect_package(pkg), connect_release(release / "model-atlas.duckdb"), open_duckdb()]
    for c in cons:
        assert locked(c)
        spill = Path(c.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        assert root.resolve() not in spill.parents and release.resolve() not in spill.parents
        for sql in (
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "SET autoload_known_extensions = true",
            "INSTALL httpfs",
            f"SELECT * FROM read_csv('{REPO / 'README.md'}')",
            "SELECT * FROM read_text('/etc/passwd')",
            f"COPY (SELECT 1) TO '{tmp_path / 'written.csv'}'",
            f"ATTACH '{tmp_path / 'other.duckdb'}' AS o",
            "SELECT * FROM glob('/*')",
        ):
            with pytest.raises(Exception):  # noqa: B017 - DuckDB raises several classes; each must refuse
                c.execute(sql).fetchall()
        c.close()
    assert not (tmp_path / "written.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_no_tool_opens_duckdb_except_through_open_duckdb():
    offenders = [p.relative_to(REPO).as_posix() for p in (REPO / "pipelines").rglob("*.py") if "duckdb.connect(" in p.read_text() and p.name != "duck.py"]
    assert offenders == []


def test_sql_names_only_through_q():
    """No f-string SQL pastes a table-derived name without q(): the audit of issue 12, kept."""
    bad = re.compile(r"(FROM|JOIN|TABLE|VIEW|INTO|EXISTS)\s+(raw|typed|flagged|release|new|old|cells|primary_cited)_\{")
    hits = [f"{p.name}:{n}" for p in (REPO / "pipelines").rglob("*.py") for n, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert hits == []
    quoted = re.compile(r"""(TABLE|FROM|JOIN|KEY \(|REFERENCES|SELECT|ON|BY|VIEW|,)\s*\\?"\{""")  # SQL with a hand-quoted "{name}"
    assert [f"{p.name}:{line}" for p in (REPO / "pipelines").rglob("*.py") for line in p.read_text().splitlines() if quoted.search(line)] == []


# --- query limits ------------------------------------------------------------------------------


def test_query_wall_time_limit(release):
    t = time.monotonic()
    proc = run_cli("query", "--release", str(release), "--timeout", "1", "SELECT count(*) FROM range(100000000000000)")
    assert proc.returncode == 1
    assert "ran longer than --timeout 1 seconds and was stopped" in proc.stderr
    assert time.monotonic() - t < 20


def test_query_memory_limit(release):
    before = snapshot(release)
    proc = run_cli(
        "query", "--release", str(release), "--memory-limit", "30MB", "--max-rows", "1",
        "SELECT list(i) FROM (SELECT i, repeat('x', 100) AS pad FROM range(3000000) t(i) ORDER BY pad || i::VARCHAR)",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout
    assert "needs more memory than --memory-limit 30MB" in proc.stderr
    assert snapshot(release) == before  # no temporary file inside the release
    assert run_cli("verify", str(release)).returncode == 0


def test_query_spills_outside_the_release(release):
    before = snapshot(release)
    proc = run_cli(
        "query", "--release", str(release), "--memory-limit", "64MB",
        "SELECT count(*) FROM (SELECT i FROM range(6000000) t(i) ORDER BY hash(i))",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "6000000" in proc.stdout
    assert snapshot(release) == before and sorted(p.name for p in release.iterdir()) == sorted(before_names(before))


def before_names(snap: dict) -> set[str]:
    return {k.split("/")[0] for k in snap}


def test_query_row_limit_default_and_option(release):
    proc = run_cli("query", "--release", str(release), "SELECT * FROM range(5000)")
    assert proc.returncode == 0
    assert "(1000 rows)" in proc.stdout and "only the first 1000 rows are shown" in proc.stderr
    proc = run_cli("query", "--release", str(release), "--max-rows", "0", "--format", "csv", "SELECT * FROM range(5000)")
    assert len(proc.stdout.splitlines()) == 5001 and proc.stderr == ""
    for bad in (["--max-rows", "-1"], ["--timeout", "0"], ["--timeout", "nan"], ["--memory-limit", "lots"]):
        p = run_cli("query", "--release", str(release), *bad, "SELECT 1")
        assert p.returncode == 2 and "usage" in p.stderr


def test_query_output_escapes_what_could_move_the_cursor(release):
    sql = "SELECT 'safe' || chr(13) || 'EVIL' AS a, 'x' || chr(8232) || chr(917505) || chr(8238) || 'y' AS b, 'tab' || chr(9) || 'bed' AS c"
    proc = run_cli("query", "--release", str(release), sql)
    assert proc.returncode == 0
    assert "\r" not in proc.stdout and "\u2028" not in proc.stdout and "\u202e" not in proc.stdout and "\U000e0001" not in proc.stdout
    assert "safe\\rEVIL" in proc.stdout and "x\\u2028\\U000e0001\\u202ey" in proc.stdout and "tab\\tbed" in proc.stdout
    js = run_cli("query", "--release", str(release), "--format", "json", sql)
    assert "\u2028" not in js.stdout and "\u202e" not in js.stdout
    assert json.loads(js.stdout)[0]["b"] == "x\u2028\U000e0001\u202ey"  # the same value, escaped


# --- one type system: validate accepts exactly what build stores --------------------------------

M, S, RV, C = "data/models.csv", "data/sources.csv", "data/reviews.csv", "data/classes.csv"


@pytest.mark.parametrize(
    "file,old,new,column,code",
    [
        (M, "7000000000,,8192", "9223372036854775808,,8192", "params_total", "type"),
        (M, "7000000000,,8192", "99999999999999999999999,,8192", "params_total", "type"),
        (M, "7000000000,,8192", "7000000000,,-9223372036854775809", "context_length", "type"),
        (S, "2024-01-15,2026-11-01", "0000-01-15,2026-11-01", "published", "type"),
        (S, "2024-01-15,2026-11-01", "2023-02-29,2026-11-01", "published", "type"),
        (S, "2024-01-15,2026-11-01", "10000-01-15,2026-11-01", "published", "type"),
    ],
)
def test_values_a_release_cannot_store_are_refused(tmp_path, file, old, new, column, code):
    root = valid_package(tmp_path)
    replace_cell(root / file, old, new)
    code_, got = findings(root)
    assert code_ == 1
    assert any(f[0] == file and f[2] == column and f[3] == code for f in got), got
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(tmp_path / "dist")).returncode == 1
    assert not (tmp_path / "dist").exists()


def _release_date_line(root: Path) -> tuple[str, int]:
    lines = (root / M).read_text().splitlines()
    for n, line in enumerate(lines[1:], 2):
        m = re.search(r",(\d{4}-\d{2}(?:-\d{2})?),", line)
        if m:
            return m.group(1), n
    raise AssertionError("no release_date in the fixture")


@pytest.mark.parametrize("date_text", ["2024-02-30", "2023-02-29", "0000-01", "0000-06-01", "2024-04-31"])
def test_impossible_release_dates_are_refused(tmp_path, date_text):
    root = valid_package(tmp_path)
    old, line = _release_date_line(root)
    replace_cell(root / M, f",{old},", f",{date_text},")
    code, got = findings(root)
    assert code == 1 and (M, line, "release_date", "calendar-date") in got, got


def test_every_fixture_that_validates_builds(tmp_path):
    """Validate and build agree: each fixture that validates (the valid package, the warning-only defects
    and the type boundaries) builds, verifies, and stores its boundary values unchanged."""
    cases = []
    for name in DEFECT_NAMES:
        (tmp_path / name).mkdir()
        root, meta = defect_package(name, tmp_path / name)
        if meta["exit_code"] == 0:
            cases.append(root)
    boundary = pkg_in(tmp_path, "boundary")
    # the largest 64-bit count, on the sparse model (the dense one sits in a class whose range stops at 10B)
    replace_cell(boundary / M, ",6000000000,1500000000,", ",9223372036854775807,1500000000,")
    replace_cell(boundary / S, "2024-01-15,2026-11-01", "0001-01-01,2026-11-01")
    old, _ = _release_date_line(boundary)
    replace_cell(boundary / M, f",{old},", ",2024-02,")
    cases += [boundary, pkg_in(tmp_path, "valid")]
    assert len(cases) >= 3
    for root in cases:
        assert findings(root)[0] == 0, root
        out = tmp_path / "dist" / root.name
        proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "1.0.0")
        assert proc.returncode == 0, (root, proc.stderr)
        assert run_cli("verify", str(out / "model-atlas-1.0.0")).returncode == 0
    q = run_cli("query", "--release", str(tmp_path / "dist" / "boundary" / "model-atlas-1.0.0"), "--format", "json",
                "SELECT max(params_total) AS p, min(release_date_precision) AS r FROM models")  # fmt: skip
    assert json.loads(q.stdout)[0]["p"] == 9223372036854775807


# --- one character policy ----------------------------------------------------------------------

REFUSED = {
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "NEL": "\u0085",
    "C1 control": "\u009b",
    "zero-width space": "\u200b",
    "Arabic letter mark": "\u061c",
    "tag character": "\U000e0041",
    "BOM inside": "\ufeff",
    "private use": "\ue000",
    "unassigned": "\u0378",
    "soft hyphen": "\u00ad",
    "right-to-left override": "\u202e",
    "word joiner": "\u2060",
    "bell": "\u0007",
    "escape": "\u001b",
    "delete": "\u007f",
    # attack round 5: invisible although not in a refused category
    "Hangul filler": "\u3164",
    "combining grapheme joiner": "\u034f",
    "variation selector 16": "\ufe0f",
    "variation selector 17": "\U000e0100",
    "Khmer vowel inherent": "\u17b4",
    "blank Braille pattern": "\u2800",
}


@pytest.mark.parametrize("label", sorted(REFUSED))
def test_invisible_characters_are_refused_everywhere(tmp_path, label):
    root = valid_package(tmp_path)
    ch = REFUSED[label]
    replace_cell(root / C, '"Any model built from layers of learned weights."', f'"Any model built from{ch} layers."')
    code, got = findings(root)
    assert code == 1 and (C, 3, "summary", "control-char") in got, got
    # fmt refuses nothing validate passes and changes no value: it leaves the character for the author to delete
    before = (root / C).read_bytes()
    run_cli("fmt", "--root", str(root))
    assert ch.encode() in (root / C).read_bytes() or before == (root / C).read_bytes()


def test_bare_carriage_return_inside_a_quoted_cell(tmp_path):
    root = valid_package(tmp_path)
    replace_cell(root / C, '"Any model built from layers of learned weights."', '"Any model built\rfrom layers."')
    code, got = findings(root)
    assert code == 1 and any(f[0] == C and f[1] == 3 and f[3] == "control-char" for f in got), got


def test_allowed_characters_pass(tmp_path):
    root = valid_package(tmp_path)
    replace_cell(root / C, '"Any model built from layers of learned weights."', '"Any model built\tfrom layers: 👩\u200d💻, می\u200cخواهم, non\u00a0breaking."')
    code, got = findings(root)
    assert code == 0, got
    assert run_cli("fmt", "--root", str(root)).returncode == 0
    assert "Any model built\tfrom layers: 👩\u200d💻, می\u200cخواهم, non\u00a0breaking." in (root / C).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "cell,trimmed",
    [
        ('"Any model built from layers of learned weights.\u00a0"', '"Any model built from layers of learned weights."'),
        ('"\u3000Any model built from layers of learned weights."', '"Any model built from layers of learned weights."'),
        ('"  Any model built from layers of learned weights.  "', '"Any model built from layers of learned weights."'),
    ],
)
def test_whitespace_fmt_trims_is_a_validate_finding_first(tmp_path, cell, trimmed):
    root = valid_package(tmp_path)
    replace_cell(root / C, '"Any model built from layers of learned weights."', cell)
    code, got = findings(root)
    assert code == 1 and (C, 3, "summary", "whitespace") in got, got
    assert run_cli("fmt", "--root", str(root)).returncode == 0
    assert trimmed in (root / C).read_text(encoding="utf-8") or trimmed.strip('"') in (root / C).read_text(encoding="utf-8")
    assert findings(root)[0] == 0


def test_whitespace_only_required_cell(tmp_path):
    root = valid_package(tmp_path)
    replace_cell(root / C, '"Any model built from layers of learned weights."', '"   "')
    code, got = findings(root)
    assert code == 1 and (C, 3, "summary", "whitespace") in got, got
    run_cli("fmt", "--root", str(root))
    code, got = findings(root)
    assert code == 1 and any(f[2] == "summary" and f[3] in ("required", "min-length") for f in got), got


def test_fmt_never_changes_a_value_inside_a_cell(tmp_path):
    root = valid_package(tmp_path)
    replace_cell(root / C, '"Any model built from layers of learned weights."', '"Any\u00a0model\u3000built  from layers."')
    assert findings(root)[0] == 0
    run_cli("fmt", "--root", str(root))
    assert "Any\u00a0model\u3000built  from layers." in (root / C).read_text(encoding="utf-8")
    assert findings(root)[0] == 0


def test_one_policy_for_terminal_output():
    assert chars.for_terminal("a\rb\nc\u2028d\x1b[2Je") == "a\\rb\\nc\\u2028d\\u001b[2Je"
    assert chars.for_terminal("plain text, ünïcödé, 中文") == "plain text, ünïcödé, 中文"
    assert all(chars.refused(REFUSED[k]) for k in REFUSED)
    assert not any(chars.refused(c) for c in "\t\u200c\u200d a\u00e9")


# --- refs, versions, output paths -------------------------------------------------------------


def _git_package(tmp_path: Path) -> Path:
    root = pkg_in(tmp_path, "repo")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *cmd], cwd=root, check=True, env=env, capture_output=True)
    return root


@pytest.mark.parametrize(
    "ref", ["--output={victim}", "-o{victim}", "--exec=touch {victim}", "no-such-branch", "main:data", "HEAD~999", "main\n--output={victim}"]
)
def test_refs_cannot_become_git_options(tmp_path, ref):
    root = _git_package(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    payload = ref.format(victim=victim)
    cases = [
        ("validate", "--root", str(root), "--as-of", AS_OF, f"--changed-since={payload}"),
        ("diff", "--root", str(root), "--", payload),
        ("build", "--root", str(root), "--as-of", AS_OF, "--out", str(tmp_path / "dist"), f"--previous={payload}"),
    ]
    for args in cases:
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "internal error" not in proc.stderr
        assert "ref" in proc.stderr or "commit" in proc.stderr, proc.stderr
    assert victim.read_text() == "keep me\n"
    assert not (tmp_path / "dist").exists()


def test_a_real_ref_still_works(tmp_path):
    root = _git_package(tmp_path)
    assert run_cli("diff", "--root", str(root), "main").returncode == 0
    assert run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--changed-since", "main").returncode == 0


@pytest.mark.parametrize(
    "version", ["../../escaped", "1.0.0/../../x", "1.0.0\n# injected", "", "1.0", "v1.0.0", "1.0.0-", "1.0.0 rc", "1." * 40 + "0", "1.0.0-\u202eevil"]
)
def test_bad_versions_are_refused(tmp_path, version):
    root = pkg_in(tmp_path, "pkg")
    out = tmp_path / "dist"
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", version)
    assert proc.returncode == 2, proc.stderr
    assert "is not a release version" in proc.stderr
    assert not out.exists() and not (tmp_path / "escaped").exists()


def test_good_prerelease_version_builds(tmp_path, release):
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.]+)?", "1.2.3-rc.1")
    root = valid_package(tmp_path)
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(tmp_path / "d"), "--version", "1.2.3-rc.1")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("out", ["data", "schemas", "data/sub", "./data/../schemas/x", "FILE", "link-to-data", "link-to-data/deeper"])
def test_out_inside_the_sources_or_a_file_is_refused(tmp_path, out):
    root = pkg_in(tmp_path, "pkg")
    (root / "FILE").write_text("not a directory\n")
    (root / "link-to-data").symlink_to(root / "data")
    before = snapshot(root)
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(root / out), "--version", "1.0.0")
    assert proc.returncode == 2, proc.stderr
    assert "internal error" not in proc.stderr and ("--out" in proc.stderr)
    assert snapshot(root) == before


# --- previous releases and verify --------------------------------------------------------------


def _copy_release(release: Path, target: Path) -> Path:
    shutil.copytree(release, target, symlinks=True)
    return target


def _resum(rel: Path) -> None:
    from pipelines.release.build import write_checksums

    (rel / "SHA256SUMS").unlink()
    write_checksums(rel)


def test_previous_release_with_a_path_outside_is_refused(tmp_path, release):
    secret = tmp_path / "secret.parquet"
    shutil.copy(release / "parquet" / "models.parquet", secret)
    prev = _copy_release(release, tmp_path / "prev")
    desc = json.loads((prev / "datapackage.json").read_text())
    desc["resources"][0]["path"] = "../secret.parquet"
    (prev / "datapackage.json").write_text(json.dumps(desc))
    _resum(prev)
    root = pkg_in(tmp_path, "pkg")
    out = tmp_path / "dist"
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "1.0.1", "--previous", str(prev))
    assert proc.returncode == 2 and "is not a verified release" in proc.stderr, proc.stderr
    assert not out.exists()


def test_out_inside_the_previous_release_is_refused(tmp_path, release):
    prev = _copy_release(release, tmp_path / "prev")
    before = snapshot(prev)
    root = pkg_in(tmp_path, "pkg")
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(prev / "nested"), "--version", "1.0.1", "--previous", str(prev))
    assert proc.returncode == 2 and "inside the previous release" in proc.stderr
    assert snapshot(prev) == before


def test_previous_release_is_used_when_it_verifies(tmp_path, release):
    root = valid_package(tmp_path)
    out = tmp_path / "dist"
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "1.0.1", "--previous", str(release))
    assert proc.returncode == 0, proc.stderr
    assert "Compared with: release 1.0.0" in (out / "model-atlas-1.0.1" / "NOTES.md").read_text()


def _gut_resources(rel: Path) -> None:
    desc = json.loads((rel / "datapackage.json").read_text())
    desc["resources"] = []
    (rel / "datapackage.json").write_text(json.dumps(desc))
    shutil.rmtree(rel / "parquet")


def _drop_parquet(rel: Path) -> None:
    shutil.rmtree(rel / "parquet")


def _drop_duckdb(rel: Path) -> None:
    (rel / "model-atlas.duckdb").unlink()


def _drop_one_resource(rel: Path) -> None:
    desc = json.loads((rel / "datapackage.json").read_text())
    gone = desc["resources"].pop()
    (rel / gone["path"]).unlink()
    (rel / "datapackage.json").write_text(json.dumps(desc))


def _symlink_out(rel: Path) -> None:
    (rel / "parquet" / "models.parquet").unlink()
    (rel / "parquet" / "models.parquet").symlink_to("/etc/passwd")


def _symlink_inside(rel: Path) -> None:
    (rel / "extra.parquet").symlink_to(rel / "parquet" / "models.parquet")


def _path_outside(rel: Path) -> None:
    desc = json.loads((rel / "datapackage.json").read_text())
    desc["resources"][0]["path"] = "/etc/passwd"
    (rel / "datapackage.json").write_text(json.dumps(desc))


def _sums_path_outside(rel: Path) -> None:
    with open(rel / "SHA256SUMS", "a") as fh:
        fh.write("0" * 64 + "  ../../etc/passwd\n")


def _deep_descriptor(rel: Path) -> None:
    (rel / "datapackage.json").write_text("[" * 100_000 + "]" * 100_000)


def _descriptor_is_a_list(rel: Path) -> None:
    (rel / "datapackage.json").write_text("[]")


def _resource_name_injection(rel: Path) -> None:
    desc = json.loads((rel / "datapackage.json").read_text())
    desc["resources"][0]["name"] = "x'); COPY (SELECT 1) TO '/tmp/owned"
    (rel / "datapackage.json").write_text(json.dumps(desc))


@pytest.mark.parametrize(
    "tamper,resum",
    [
        (_gut_resources, True),
        (_drop_parquet, True),
        (_drop_duckdb, True),
        (_drop_one_resource, True),
        (_symlink_out, True),
        (_symlink_inside, False),
        (_path_outside, True),
        (_sums_path_outside, False),
        (_resource_name_injection, True),
        (_deep_descriptor, True),
        (_descriptor_is_a_list, True),
    ],
    ids=lambda v: v.__name__ if callable(v) else str(v),
)
def test_verify_refuses_incomplete_or_escaping_releases(tmp_path, release, tamper, resum):
    rel = _copy_release(release, tmp_path / "model-atlas-1.0.0")
    tamper(rel)
    if resum:
        try:
            _resum(rel)
        except OSError:
            pass
    proc = run_cli("verify", str(rel))
    assert proc.returncode == 1, proc.stdout
    assert "internal error" not in proc.stderr and "root:" not in proc.stdout
    assert not Path("/tmp/owned").exists()


def test_verify_refuses_a_release_directory_that_is_a_symlink(tmp_path, release):
    link = tmp_path / "link"
    link.symlink_to(release)
    assert run_cli("verify", str(link)).returncode == 1


# --- bounded reports ---------------------------------------------------------------------------


def test_large_bad_input_gives_a_bounded_report_in_bounded_memory(tmp_path):
    """40 MB of duplicated rows: at most 1000 findings per rule and file plus a count of the rest, under 1.5 GB."""
    root = valid_package(tmp_path)
    lines = (root / M).read_text().splitlines(keepends=True)
    rows = lines[1:]
    body, size = [], 0
    while size < 40 * 1024 * 1024:
        body.append(rows[len(body) % len(rows)])
        size += len(body[-1])
    (root / M).write_text(lines[0] + "".join(body))
    code = (
        "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.stdout.write(p.stdout)"
    )
    cmd = [str(Path(sys.executable).parent / "model-atlas"), "validate", "--root", str(root), "--as-of", AS_OF, "--format", "json"]
    proc = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, timeout=600)
    rss_kb, _, report = proc.stdout.partition("\n")
    assert int(rss_kb) < 1.5 * 1024 * 1024, f"peak RSS {int(rss_kb) // 1024} MiB"
    found = json.loads(report)["findings"]
    per = {}
    for f in found:
        per[(f["file"], f["code"])] = per.get((f["file"], f["code"]), 0) + 1
    assert max(per.values()) <= 1001
    more = [f for f in found if f["column"] == "(more)"]
    assert more and all(int(f["message"].split()[0]) > 100000 for f in more)
    assert len(report) < 5_000_000


def test_huge_cell_in_a_file_with_a_hygiene_defect(tmp_path):
    root = valid_package(tmp_path)
    text = (root / C).read_text(encoding="utf-8")
    text = text.replace('"Any model built from layers of learned weights."', '"' + "w" * 200_000 + '"').replace("\n", "\r\n")
    (root / C).write_bytes(text.encode("utf-8"))
    code, got = findings(root)
    assert code == 1
    assert (C, 3, "summary", "cell-too-long") in got and any(f[3] == "line-endings" for f in got), got


# --- new ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["models/../../etc/passwd", "models/a/b", "models/a\\b", "classes/", "models/X Y", "models/a\nb", "/models/a"])
def test_new_review_name_with_separators_is_refused(tmp_path, name):
    root = valid_package(tmp_path)
    before = snapshot(root)
    proc = run_cli("new", "review", "--root", str(root), "--name", name, "--append", "--date", AS_OF)
    assert proc.returncode == 1 and "is not" in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert snapshot(root) == before


@pytest.mark.parametrize("name", ["Line\nbreak", "Bidi \u202e trick", " Padded", "Tag\U000e0041"])
def test_new_name_with_invisible_or_multiline_text_is_refused(tmp_path, name):
    root = valid_package(tmp_path)
    before = snapshot(root)
    proc = run_cli("new", "model", "--root", str(root), "--name", name, "--append")
    assert proc.returncode == 1 and "is not a usable --name" in proc.stderr
    assert snapshot(root) == before


@pytest.mark.parametrize("aliases", ["a||b", "|a", "a|", "a | b", "a|  |b"])
def test_list_fields_refuse_empty_or_padded_items(tmp_path, aliases):
    root = valid_package(tmp_path)
    text = (root / C).read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([text[0]]))
    row = next(csv.reader([text[1]]))
    row[header.index("aliases")] = aliases
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    text[1] = buf.getvalue().rstrip("\n")
    (root / C).write_text("\n".join(text) + "\n", encoding="utf-8")
    code, got = findings(root)
    assert code == 1 and (C, 2, "aliases", "list-item") in got, got


# --- workflows ---------------------------------------------------------------------------------


def test_workflows_pass_zizmor():
    exe = Path(sys.executable).parent / "zizmor"
    assert exe.exists(), "zizmor is a dev dependency: pip install -c constraints.txt -e '.[dev]'"
    proc = subprocess.run([str(exe), "--offline", "--no-progress", "--format", "json", str(REPO / ".github" / "workflows")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == []


def test_workflows_pin_actions_and_drop_credentials():
    for wf in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        text = wf.read_text()
        for uses in re.findall(r"uses:\s*(\S+)(.*)", text):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses[0]) and re.search(r"# v\d+\.\d+\.\d+", uses[1]), (wf.name, uses)
        assert text.count("actions/checkout@") == text.count("persist-credentials: false"), wf.name
        for job in re.split(r"\n  (?=[\w-]+:\n)", text.split("\njobs:\n", 1)[1]):  # a job that may write runs no checked-out code
            assert not (re.search(r"contents:\s*write", job) and "actions/checkout" in job), wf.name
    hooks = (REPO / ".pre-commit-config.yaml").read_text()
    assert "id: zizmor" in hooks and "zizmor==" in hooks


# --- found while attacking the finished work as an outsider (README and SECURITY.md in hand) ---


def test_query_allocation_that_escapes_duckdbs_memory_limit(release):
    """repeat() builds one huge string outside DuckDB's buffer manager and ignores the interrupt: the
    process's address-space cap turns it into the memory message in seconds (it reached 3 GB and 37 s)."""
    t = time.monotonic()
    proc = run_cli("query", "--release", str(release), "--timeout", "10", "SELECT length(repeat('x', 1500000000))")
    assert proc.returncode == 1 and "needs more memory than --memory-limit 1GB" in proc.stderr, proc.stderr
    assert time.monotonic() - t < 25


def test_query_hard_stop_ends_the_process_with_the_message():
    code = "from pipelines.release.query import _hard_stop; _hard_stop(3, lambda: None); print('not reached')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1 and "did not stop when interrupted" in proc.stderr and "not reached" not in proc.stdout


@pytest.mark.parametrize(
    "sql", ["EXPORT DATABASE '/tmp/model-atlas-export'", "LOAD '/tmp/evil.duckdb_extension'", "ATTACH ':memory:' AS m", "SELECT getenv('HOME')"]
)
def test_query_cannot_export_load_attach_or_read_the_environment(release, sql):
    proc = run_cli("query", "--release", str(release), sql)
    assert proc.returncode == 1 and proc.stderr.startswith("error:")
    assert not Path("/tmp/model-atlas-export").exists()


@pytest.mark.parametrize("fmt", ["human", "github", "json"])
def test_validate_output_escapes_hostile_values(tmp_path, fmt):
    """Messages quote cell values: a bidi override or CR in an enum cell must not reach the terminal or the CI log raw."""
    root = valid_package(tmp_path)
    rows = list(csv.reader((root / C).read_text(encoding="utf-8").splitlines()))
    rows[1][rows[0].index("facet")] = "archi\u202etecture\u2028\x1b[2J"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    (root / C).write_text(buf.getvalue(), encoding="utf-8")
    proc = run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--format", fmt)
    assert proc.returncode == 1
    for raw in ("\u202e", "\u2028", "\x1b"):
        assert raw not in proc.stdout + proc.stderr
    assert "enum" in proc.stdout + proc.stderr


def test_a_resource_name_cannot_collide_with_a_snapshots_own_tables(tmp_path):
    """diff copies each old table to <prefix>_<name>$m; a resource called models_m once overwrote the copy of models."""
    root = pkg_in(tmp_path, "repo")
    desc = json.loads((root / "datapackage.json").read_text())
    extra = dict(desc["resources"][3], name="models_m", path="data/models_m.csv")
    desc["resources"].append(extra)
    (root / "datapackage.json").write_text(json.dumps(desc, indent=2))
    shutil.copy(root / "data" / "model_relations.csv", root / "data" / "models_m.csv")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *cmd], cwd=root, check=True, env=env, capture_output=True)
    replace_cell(root / M, "Dense 7B,", "Dense 7B v2,")
    proc = run_cli("diff", "--root", str(root), "main")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| models")}
    assert set(lines) >= {"models", "models_m"}, proc.stdout


def test_extreme_as_of_dates_are_findings_not_crashes(tmp_path):
    root = valid_package(tmp_path)
    for as_of in ("0001-01-01", "9999-12-31"):
        proc = run_cli("validate", "--root", str(root), "--as-of", as_of)
        assert proc.returncode == 1 and "internal error" not in proc.stderr
    assert run_cli("stale", "--root", str(root), "--as-of", "9999-12-31").returncode == 0


@pytest.mark.parametrize("path", [".git/config", "data/.hidden.csv", ".github/workflows/validate.yml", "data/models.txt"])
def test_descriptor_paths_into_hidden_or_non_csv_files_are_refused(tmp_path, path):
    root = valid_package(tmp_path)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[remote]\n\turl = https://token@example.invalid/x\n")
    desc = json.loads((root / "datapackage.json").read_text())
    desc["resources"][3]["path"] = path
    (root / "datapackage.json").write_text(json.dumps(desc))
    proc = run_cli("validate", "--root", str(root), "--format", "json")
    assert proc.returncode == 2
    assert [(f["column"], f["code"]) for f in json.loads(proc.stdout)["findings"]][0][0] == "/resources/3/path"
    assert "token" not in proc.stdout


def test_diff_markdown_carries_no_html_or_line_breaks(tmp_path):
    root = pkg_in(tmp_path, "repo")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *cmd], cwd=root, check=True, env=env, capture_output=True)
    replace_cell(root / M, "Dense 7B,", '"Dense <img src=https://example.invalid/t.png> 7B\r\n## injected | x",')
    proc = run_cli("diff", "--root", str(root), "main")
    assert proc.returncode == 0, proc.stderr
    assert "<img" not in proc.stdout and "\n## injected" not in proc.stdout and "\r" not in proc.stdout
    assert "&lt;img" in proc.stdout


def test_stale_markdown_carries_no_html(tmp_path):
    """The PR workflow writes the stale report into the job summary even when validation failed."""
    root = valid_package(tmp_path)
    text = (root / RV).read_text(encoding="utf-8")
    (root / RV).write_text(text.replace("model-atlas-curators", "<img src=https://example.invalid/t.png>|x"), encoding="utf-8")
    proc = run_cli("stale", "--root", str(root), "--as-of", "2099-01-01", "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert "<img" not in proc.stdout and "&lt;img" in proc.stdout


@pytest.mark.parametrize("value", ["\u200d", "\u200c\u200d", " \u200d"])
def test_a_cell_of_nothing_but_joiners_is_refused(tmp_path, value):
    """Attack round 5: a required name of only a zero-width joiner looked blank and passed."""
    root = valid_package(tmp_path)
    replace_cell(root / C, '"Any model built from layers of learned weights."', f'"{value}"')
    code, got = findings(root)
    assert code == 1 and (C, 3, "summary", "control-char") in got, got
