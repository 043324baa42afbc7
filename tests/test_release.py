"""model-atlas build / verify / query on the real data: files read back by three readers, keys,
comments, determinism, atomicity, and a real DuckDB 1.x client."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import AS_OF, REPO, defect_package, run_cli

from pipelines.package.descriptor import load_package
from pipelines.release.schema import release_columns

PKG = load_package(REPO)
EPOCH = "1795392000"  # 2026-11-23T00:00:00Z


def build(out: Path, *extra: str) -> Path:
    env_epoch = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        proc = run_cli("build", "--root", str(REPO), "--as-of", AS_OF, "--out", str(out), "--version", "9.9.9", *extra)
    finally:
        if env_epoch is None:
            os.environ.pop("SOURCE_DATE_EPOCH")
        else:
            os.environ["SOURCE_DATE_EPOCH"] = env_epoch
    assert proc.returncode == 0, proc.stderr
    return out / "model-atlas-9.9.9"


def checksums(release: Path) -> dict[str, str]:
    """SHA256SUMS as {path: line}."""
    return {line.split("  ")[1]: line for line in (release / "SHA256SUMS").read_text().splitlines()}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("dist"))


def csv_rows(table: str) -> list[dict]:
    with open(REPO / PKG.table(table).path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_layout(release):
    assert sorted(p.name for p in release.iterdir()) == ["NOTES.md", "SHA256SUMS", "datapackage.json", "model-atlas.duckdb", "parquet"]
    assert sorted(p.stem for p in (release / "parquet").iterdir()) == sorted(PKG.tables)


@pytest.mark.parametrize("table", sorted(PKG.tables))
def test_parquet_matches_csv_in_three_readers(release, table):
    import polars as pl

    path = release / "parquet" / f"{table}.parquet"
    source = csv_rows(table)
    key = list(PKG.table(table).primary_key)
    expected_keys = sorted(tuple(r[k] for k in key) for r in source)
    by_arrow = pq.read_table(path)
    by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()
    by_polars = pl.read_parquet(path)
    assert by_arrow.num_rows == len(by_duckdb) == by_polars.height == len(source) > 0
    arrow_keys = [tuple(str(v) for v in row) for row in zip(*(by_arrow.column(k).to_pylist() for k in key), strict=True)]
    assert arrow_keys == expected_keys, "rows must be sorted by primary key and match the CSV"
    assert [tuple(str(v) for v in row) for row in by_polars.select(key).iter_rows()] == expected_keys
    # every schema column survives with the CSV's value, typed
    fields = {f.name: f for f in PKG.table(table).fields}
    records = {tuple(str(r[k]) for k in key): r for r in by_arrow.to_pylist()}
    for src in source:
        got = records[tuple(src[k] for k in key)]
        for name, f in fields.items():
            raw, value = src[name], got[name]
            if raw == "":
                assert value is None, (table, name)
            elif f.type == "integer":
                assert value == int(raw)
            elif f.type == "boolean":
                assert value is (raw == "true")
            elif f.type == "list":
                assert value == [x.strip() for x in raw.split("|")]
            elif f.type == "date" or (table == "models" and name == "release_date"):
                assert value.isoformat().startswith(raw)
            else:
                assert value == raw


def test_parquet_types_descriptions_and_compression(release):
    schema = pq.read_schema(release / "parquet" / "models.parquet")
    types = {f.name: str(f.type) for f in schema}
    assert types["release_date"] == "date32[day]" and types["params_total"] == "int64"
    assert types["open_weights"] == "bool" and types["stale"] == "bool" and types["last_reviewed"] == "date32[day]"
    assert str(pq.read_schema(release / "parquet" / "classes.parquet").field("aliases").type) in ("list<item: string>", "list<element: string>")
    for table in PKG.tables.values():
        s = pq.read_schema(release / "parquet" / f"{table.name}.parquet")
        assert s.metadata[b"description"].decode() == table.description
        for c in release_columns(table):
            assert s.field(c.name).metadata[b"description"].decode() == c.description
        meta = pq.ParquetFile(release / "parquet" / f"{table.name}.parquet").metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"


def test_every_released_fact_row_has_confidence_and_last_review(release):
    con = duckdb.connect(str(release / "model-atlas.duckdb"), read_only=True)
    for table in ("models", "classes", "model_classes", "citations"):
        missing = con.execute(f"SELECT count(*) FROM {table} WHERE confidence IS NULL OR last_reviewed IS NULL").fetchone()[0]
        assert missing == 0, table
    levels = con.execute("SELECT level FROM confidence_levels ORDER BY rank").fetchall()
    assert levels == [("low",), ("medium",), ("high",)]


def test_duckdb_keys_comments_views_and_release_info(release):
    con = duckdb.connect(str(release / "model-atlas.duckdb"), read_only=True)
    pks = {r[0] for r in con.execute("SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'").fetchall()}
    assert set(PKG.tables) <= pks
    fks = con.execute("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'").fetchone()[0]
    assert fks == sum(len(t.foreign_keys) for t in PKG.tables.values())
    uncommented = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() AND table_name IN "
        f"({', '.join(repr(t) for t in PKG.tables)}) AND (comment IS NULL OR comment = '')"
    ).fetchall()
    assert uncommented == []
    for view in (
        "model_overview",
        "class_tree",
        "class_members",
        "stale_rows",
        "fact_citations",
        "seed_corrections",
        "architecture_comparison",
        "ambiguous_abbreviations",
    ):
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] >= 0
    assert con.execute("SELECT count(*) FROM model_overview").fetchone()[0] == len(csv_rows("models"))
    lcm = con.execute("SELECT class_ids FROM ambiguous_abbreviations WHERE abbreviation = 'LCM'").fetchone()[0]
    assert lcm == ["large-concept-model", "latent-consistency-model"]
    info = dict(con.execute("SELECT key, value FROM release_info").fetchall())
    assert info["version"] == "9.9.9" and info["as_of"] == AS_OF and json.loads(info["row_counts"])["models"] == len(csv_rows("models"))


def test_two_builds_are_byte_identical(release, tmp_path):
    again = build(tmp_path)
    first, second = checksums(release), checksums(again)
    reproducible = [name for name in first if name.startswith("parquet/") or name == "datapackage.json"]
    assert len(reproducible) == len(PKG.tables) + 1
    for name in reproducible:
        assert first[name] == second[name], name


def test_descriptor_lists_parquet_with_bytes_and_hash(release):
    desc = json.loads((release / "datapackage.json").read_text())
    assert desc["version"] == "9.9.9" and desc["licenses"] and desc["created"].endswith("Z")
    for res in desc["resources"]:
        path = release / res["path"]
        assert res["bytes"] == path.stat().st_size and res["hash"].startswith("sha256:")


def test_verify_passes_then_names_a_tampered_file(release, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    ok = run_cli("verify", str(copy))
    assert ok.returncode == 0, ok.stdout
    target = copy / "parquet" / "models.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    bad = run_cli("verify", str(copy))
    assert bad.returncode == 1
    assert "parquet/models.parquet: sha256 does not match SHA256SUMS" in bad.stdout


def test_build_refuses_invalid_data_and_writes_nothing(tmp_path):
    (tmp_path / "pkg").mkdir()
    pkg, _ = defect_package("foreign-key", tmp_path / "pkg")
    out = tmp_path / "dist"
    proc = run_cli("build", "--root", str(pkg), "--out", str(out), "--as-of", AS_OF)
    assert proc.returncode == 1
    assert "foreign-key" in proc.stderr and "nothing was written" in proc.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_build_refuses_to_overwrite_a_release(release):
    before = (release / "SHA256SUMS").read_bytes()
    proc = run_cli("build", "--root", str(REPO), "--as-of", AS_OF, "--out", str(release.parent), "--version", "9.9.9")
    assert proc.returncode == 1 and "immutable" in proc.stderr
    assert (release / "SHA256SUMS").read_bytes() == before


def test_notes_list_counts_and_changes_against_a_previous_release(release, tmp_path):
    notes = (release / "NOTES.md").read_text()
    assert f"| models | {len(csv_rows('models'))} |" in notes
    # a second release compared with the first: nothing changed
    proc = run_cli("build", "--root", str(REPO), "--as-of", AS_OF, "--out", str(tmp_path), "--version", "9.9.10", "--previous", str(release))
    assert proc.returncode == 0, proc.stderr
    notes2 = (tmp_path / "model-atlas-9.9.10" / "NOTES.md").read_text()
    assert "Changes from release 9.9.9" in notes2 and "| models | 0 | 0 | 0 |" in notes2


def test_query_prints_table_csv_and_json(release):
    sql = "SELECT model_id, params_total FROM models WHERE model_id = 'mixtral-8x7b'"
    table = run_cli("query", sql, "--release", str(release))
    assert table.returncode == 0 and "mixtral-8x7b" in table.stdout and "(1 row)" in table.stdout
    as_csv = run_cli("query", sql, "--release", str(release), "--format", "csv")
    row = {r["model_id"]: r for r in csv.DictReader(as_csv.stdout.splitlines())}["mixtral-8x7b"]
    assert row["params_total"] == next(r["params_total"] for r in csv_rows("models") if r["model_id"] == "mixtral-8x7b")
    as_json = run_cli("query", sql, "--release", str(release), "--format", "json")
    assert json.loads(as_json.stdout)[0]["model_id"] == "mixtral-8x7b"


DUCKDB1 = REPO / ".venv-duckdb1"


def duckdb1_python() -> Path:
    """A separate environment holding a DuckDB 1.x client (created on first use)."""
    py = DUCKDB1 / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DUCKDB1)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "duckdb==1.4.4"], check=True, timeout=600)
    return py


def test_release_opens_in_duckdb_1x_and_2x(release):
    path = release / "model-atlas.duckdb"
    script = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(duckdb.__version__, c.execute(\"SELECT count(*) FROM model_overview WHERE 'mixture-of-experts' = ANY(classes)\").fetchone()[0])"
    )
    old = subprocess.run([str(duckdb1_python()), "-c", script, str(path)], capture_output=True, text=True)
    assert old.returncode == 0, old.stderr
    new = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True)
    old_version, old_count = old.stdout.split()
    new_version, new_count = new.stdout.split()
    assert old_version.startswith("1.") and new_version.startswith("2.")
    assert old_count == new_count and int(new_count) > 5


def test_benchmark_script_runs_small(tmp_path):
    """benchmarks/bench.py end to end on a small package (without the slow frictionless run)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--rows", "3000", "--skip-frictionless", "--keep", str(tmp_path / "pkg")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "model-atlas validate" in proc.stdout and "(exit 1: refused, the package has defects)" in proc.stdout
    assert "on the same package without defects (exit 0" in proc.stdout
    # the generated package really holds 3,000 models and the injected defects within that range
    with open(tmp_path / "pkg" / "data" / "models.csv", encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == 3001


def test_build_floor_script_loads_every_row(release):
    """benchmarks/build_floor.py loads the release's Parquet files with and without keys and reports each table."""
    script = REPO / "benchmarks" / "build_floor.py"
    proc = subprocess.run([sys.executable, str(script), str(release)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in proc.stdout.splitlines()[1:-1]}
    assert rows == {t: len(csv_rows(t)) for t in PKG.tables} | {"total": sum(len(csv_rows(t)) for t in PKG.tables)}
    assert "the keys cost" in proc.stdout.splitlines()[-1]
    missing = subprocess.run([sys.executable, str(script), str(release / "nope")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_build_under_a_tight_memory_cap_gives_the_same_release(release, tmp_path):
    """A --memory-limit near the least the real data can be built in: the same release, nothing left over."""
    out = tmp_path / "dist"
    capped = build(out, "--memory-limit", "64MB")
    assert sorted(p.name for p in out.iterdir()) == [capped.name], "the spill directory is removed"
    first, second = checksums(release), checksums(capped)
    for name in [n for n in first if n.startswith("parquet/")] + ["datapackage.json"]:
        assert first[name] == second[name], name
    assert run_cli("verify", str(capped)).returncode == 0


def test_build_memory_limit_too_small_or_malformed(tmp_path):
    out = tmp_path / "dist"
    starved = run_cli("build", "--root", str(REPO), "--as-of", AS_OF, "--out", str(out), "--version", "9.9.8", "--memory-limit", "4MB")
    assert starved.returncode == 2
    assert "needs more memory than --memory-limit 4MB allows; nothing was written" in starved.stderr
    assert not out.exists() or list(out.iterdir()) == []
    bad = run_cli("build", "--root", str(REPO), "--out", str(out), "--memory-limit", "lots")
    assert bad.returncode == 2 and "'lots' is not a memory size" in bad.stderr
