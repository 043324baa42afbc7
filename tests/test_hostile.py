"""Hostile and broken input: never crash, never lose a row, never run what a cell says."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest
from conftest import AS_OF, REPO, run_cli, valid_package
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.checks.validate import validate
from pipelines.package.descriptor import PackageError, load_package
from pipelines.package.findings import RULES

# every package here is built from tests/fixtures: no test reads the checkout's data/ (see tests/test_whole_suite.py)
pytestmark = pytest.mark.fixtures_only

ROW_CODES = {c for c, r in RULES.items() if r.group in ("schema", "keys", "row", "safety") and c not in ("file-too-large",)}
CATALOGUE_CASES = 0


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- descriptor trust -------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["path", "schema"])
def test_a_symlink_that_leads_outside_is_refused_before_reading(tmp_path, which):
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    outside = tmp_path / "secret.csv"
    outside.write_text("model_id,name\nstolen,yes\n")
    desc = json.loads((root / "datapackage.json").read_text())
    if which == "path":
        (root / "data" / "models.csv").unlink()
        (root / "data" / "models.csv").symlink_to(outside)
    else:
        (root / "schemas" / "models.json").unlink()
        (root / "schemas" / "models.json").symlink_to(outside)
    (root / "datapackage.json").write_text(json.dumps(desc))
    proc = run_cli("validate", "--root", str(root), "--format", "json")
    assert proc.returncode == 2
    findings = json.loads(proc.stdout)["findings"]
    assert [f["code"] for f in findings] == ["path-outside-package"]
    assert "stolen" not in proc.stdout


# --- property-based: packages drawn from the schemas, then damaged ------------------------------

PKG = load_package(REPO)


def value_strategy(field):
    c = field.constraints
    if "enum" in c:
        return st.sampled_from(c["enum"])
    if field.type == "integer":
        return st.integers(min_value=c.get("minimum", 0), max_value=c.get("maximum", 10**12)).map(str)
    if field.type == "boolean":
        return st.sampled_from(["true", "false"])
    if field.type == "date":
        return st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 11, 1)).map(date.isoformat)
    if "pattern" in c:
        return st.from_regex(c["pattern"], fullmatch=True).filter(lambda v: len(v) <= c.get("maxLength", 60))
    return (
        st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
            min_size=c.get("minLength", 0),
            max_size=min(80, c.get("maxLength", 80)),
        )
        .map(str.strip)
        .filter(lambda v: len(v) >= c.get("minLength", 0) and v[:1] not in "=+-@")
    )


def rows_strategy(table, max_rows=6):
    row = st.fixed_dictionaries({f.name: (value_strategy(f) if f.required else st.one_of(st.just(""), value_strategy(f))) for f in table.fields})
    return st.lists(row, min_size=1, max_size=max_rows)


def to_csv(table, rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.field_names)
    for r in rows:
        w.writerow([r[n] for n in table.field_names])
    return buf.getvalue().encode("utf-8")


MUTATIONS = [
    "none",
    "random-bytes",
    "truncate",
    "swap-columns",
    "duplicate-column",
    "duplicate-rows",
    "huge-cell",
    "deep-unicode",
    "mixed-line-endings",
    "drop-quote",
    "bom-and-nul",
]


def mutate(data: bytes, how: str, rnd: st.DataObject) -> bytes:
    if how == "random-bytes":
        pos = rnd.draw(st.integers(0, len(data)))
        return data[:pos] + rnd.draw(st.binary(min_size=1, max_size=40)) + data[pos:]
    if how == "truncate":
        return data[: rnd.draw(st.integers(0, len(data)))]
    lines = data.decode("utf-8").split("\n")
    if how == "swap-columns":
        head = lines[0].split(",")
        if len(head) > 1:
            i = rnd.draw(st.integers(0, len(head) - 2))
            head[i], head[i + 1] = head[i + 1], head[i]
        lines[0] = ",".join(head)
    elif how == "duplicate-column":
        lines = [line + "," + line.split(",")[0] if line else line for line in lines]
    elif how == "duplicate-rows":
        lines = lines[:1] + lines[1:] + lines[1:]
    elif how == "huge-cell":
        lines.insert(1, "x" * rnd.draw(st.integers(3000, 300_000)) + "," * (lines[0].count(",")))
    elif how == "deep-unicode":
        lines.insert(1, ",".join(rnd.draw(st.text(min_size=1, max_size=30)).replace(",", "").replace("\n", "").replace('"', "") for _ in lines[0].split(",")))
    elif how == "mixed-line-endings":
        return "\n".join(line + ("\r" if i % 2 else "") for i, line in enumerate(lines)).encode("utf-8")
    elif how == "drop-quote":
        text = "\n".join(lines)
        idx = text.find('"')
        return (text[:idx] + text[idx + 1 :] if idx >= 0 else text + '"').encode("utf-8")
    elif how == "bom-and-nul":
        return b"\xef\xbb\xbf" + "\n".join(lines).replace(",", ",\x00", 1).encode("utf-8")
    return "\n".join(lines).encode("utf-8")


TABLES = ["models", "classes", "sources", "reviews", "citations", "model_classes"]
CASES: list[str] = []


@settings(max_examples=150, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), table=st.sampled_from(TABLES), how=st.sampled_from(MUTATIONS))
def test_generated_and_damaged_packages_never_crash(tmp_path, data, table, how):
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    valid_package(root)
    t = PKG.table(table)
    raw = to_csv(t, data.draw(rows_strategy(t)))
    (root / t.path).write_bytes(mutate(raw, how, data))
    before = snapshot(root)
    started = time.monotonic()
    try:
        report = validate(root, date.fromisoformat(AS_OF))
        findings = report.findings
    except PackageError as exc:  # a refusal is an acceptable answer, never a traceback
        findings = exc.findings
    assert time.monotonic() - started < 20
    for f in findings:
        assert f.file, f
        assert f.code in RULES and f.message and f.fix
        if f.code in ROW_CODES and f.file.endswith(".csv"):
            assert f.line >= 1, f
    assert snapshot(root) == before, "validate must never write"
    CASES.append(how)


def test_hostile_case_count_is_reported():
    # run after the property test in the same session: the closing note quotes this number
    print(f"\nhostile generated cases: {len(CASES)}; catalogue fixtures: {len(list((REPO / 'tests' / 'fixtures' / 'defects').iterdir()))}")


# --- no data lost ---------------------------------------------------------------------------------


def fail_on_rename(monkeypatch, n: int) -> None:
    """Make the n-th rename done by the writers fail, as a full disk would."""
    from pipelines.contrib import fmt

    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == n:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(fmt.os, "replace", failing_replace)


def test_fmt_failure_mid_way_leaves_data_byte_identical(tmp_path, monkeypatch):
    from pipelines.contrib import fmt

    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    for p in (root / "data").glob("*.csv"):  # make every file non-canonical
        p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    before = snapshot(root / "data")
    fail_on_rename(monkeypatch, 3)
    with pytest.raises(OSError):
        fmt.format_package(load_package(root), check=False)
    monkeypatch.undo()
    assert snapshot(root / "data") == before
    assert not [p for p in (root / "data").iterdir() if p.name.startswith(".")], "no temporary files left behind"


def test_new_failure_leaves_every_table_as_it_was(tmp_path, monkeypatch):
    from pipelines.contrib import new

    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    before = snapshot(root / "data")
    fail_on_rename(monkeypatch, 2)
    with pytest.raises(OSError):
        new.new_rows(root, "model", None, "Fresh Model", True, date(2026, 11, 23))
    monkeypatch.undo()
    assert snapshot(root / "data") == before


def test_build_failure_leaves_earlier_release_and_no_partial_output(tmp_path, monkeypatch):
    from pipelines.checks.validate import connect_checked
    from pipelines.release import build as release

    out = tmp_path / "dist"
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "1.0.0").returncode == 0
    earlier = snapshot(out)
    pkg = load_package(root)
    info = release.build_info(pkg, "1.0.1", date.fromisoformat(AS_OF))
    con, _, _ = connect_checked(pkg, info.as_of, directories=[release.staging_dir(out, info.version)])

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(release, "write_descriptor", broken)
    with pytest.raises(OSError):
        release.build_release(pkg, con, out, info)
    assert snapshot(out) == earlier
    assert sorted(p.name for p in out.iterdir()) == ["model-atlas-1.0.0"]


def test_two_builds_at_once_never_corrupt_each_other(tmp_path):
    out = tmp_path / "dist"
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    cmd = [str(Path(sys.executable).parent / "model-atlas"), "build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "2.0.0"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes in ([0, 0], [0, 1]), results
    for code, _, err in results:
        assert "Traceback" not in err
        if code == 1:
            assert "already exists" in err or "appeared while building" in err
    assert run_cli("verify", str(out / "model-atlas-2.0.0")).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["model-atlas-2.0.0"]


# --- read-only query ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("q")
    root = valid_package(tmp_path_factory.mktemp("pkg"))
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "3.0.0").returncode == 0
    return out / "model-atlas-3.0.0"


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE evil AS SELECT 1",
        "INSERT INTO confidence_levels VALUES ('x', 9, 'nope nope nope nope nope')",
        "DELETE FROM models",
        "COPY (SELECT 1) TO '{tmp}/out.csv'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "PRAGMA enable_external_access",
    ],
)
def test_query_cannot_write_attach_load_or_read_outside(built, tmp_path, sql):
    before = snapshot(built)
    proc = run_cli("query", sql.format(tmp=tmp_path), "--release", str(built))
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []
    assert snapshot(built) == before
