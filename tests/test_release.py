"""model-atlas build / verify / query: files read back by three readers, keys, comments, determinism,
atomicity, and a real DuckDB 1.x client.

The release of the real data is built as a contributor builds it (no --as-of: today in UTC) and is
checked only for invariants (every CSV row is released, typed and keyed), never for counts or values
that change when a row is added. Behaviour (refusals, idempotence, dirty trees) runs on the fixture."""

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
from conftest import AS_OF, REPO, defect_package, git, git_repo, review_today, run_cli, utc_today, valid_package

from pipelines.package.descriptor import load_package
from pipelines.release.schema import release_columns

PKG = load_package(REPO)
EPOCH = "1795392000"  # 2026-11-23T00:00:00Z


def build(out: Path, *extra: str) -> Path:
    env_epoch = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        proc = run_cli("build", "--root", str(REPO), "--out", str(out), "--version", "9.9.9", *extra)
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
    assert sorted(p.name for p in release.iterdir()) == ["NOTES.md", "README.md", "SHA256SUMS", "csv", "datapackage.json", "model-atlas.duckdb", "parquet"]
    assert sorted(p.name for p in (release / "parquet").iterdir()) == sorted(f"{t}.parquet" for t in PKG.tables)
    assert sorted(p.name for p in (release / "csv").iterdir()) == sorted(f"{t}.csv" for t in PKG.tables)


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
    if "derived" in by_arrow.column_names:  # rows the release computed (size bands) are not in the CSV
        import pyarrow.compute as pc

        by_arrow = by_arrow.filter(pc.invert(pc.fill_null(by_arrow["derived"], False)))
        by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{path}') WHERE derived IS NOT TRUE").fetchall()
        by_polars = by_polars.filter(~pl.col("derived").fill_null(False))
    assert by_arrow.num_rows == len(by_duckdb) == by_polars.height == len(source)

    def as_written(r, k):  # a month-only date is released as its first day plus a precision column
        v = r[k]
        if r.get(k + "_precision") == "month":
            return v.strftime("%Y-%m")
        return v.isoformat() if hasattr(v, "isoformat") else str(v)

    arrow_keys = [tuple(as_written(r, k) for k in key) for r in by_arrow.to_pylist()]
    assert sorted(arrow_keys) == expected_keys, "rows must match the CSV"
    assert [tuple(str(r[k]) for k in key) for r in by_arrow.to_pylist()] == sorted(tuple(str(r[k]) for k in key) for r in by_arrow.to_pylist()), (
        "rows must be sorted by key"
    )
    assert [tuple(as_written(r, k) for k in key) for r in by_polars.to_dicts()] == [tuple(as_written(r, k) for k in key) for r in by_arrow.to_pylist()]
    # every schema column survives with the CSV's value, typed
    fields = {f.name: f for f in PKG.table(table).fields}
    records = {tuple(as_written(r, k) for k in key): r for r in by_arrow.to_pylist()}
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
            elif f.type == "date" or "month" in f.date_precision:
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
    by_abbreviation: dict[str, list[str]] = {}
    for r in csv_rows("classes"):
        if r["abbreviation"]:
            by_abbreviation.setdefault(r["abbreviation"], []).append(r["class_id"])
    ambiguous = {a: sorted(ids) for a, ids in by_abbreviation.items() if len(ids) > 1}
    assert dict(con.execute("SELECT abbreviation, class_ids FROM ambiguous_abbreviations").fetchall()) == ambiguous
    info = dict(con.execute("SELECT key, value FROM release_info").fetchall())
    assert info["version"] == "9.9.9" and info["as_of"] == utc_today()
    released, from_csv = {}, {}
    for t in PKG.tables:
        derived = "derived" in [c.name for c in release_columns(PKG.table(t))]
        released[t], from_csv[t] = con.execute(f"SELECT count(*), count(*) FILTER (WHERE {'derived IS NOT TRUE' if derived else 'TRUE'}) FROM {t}").fetchone()
    assert json.loads(info["row_counts"]) == released
    assert from_csv == {t: len(csv_rows(t)) for t in PKG.tables} and sum(from_csv.values()) > 0


def test_two_builds_are_byte_identical(release, tmp_path):
    again = build(tmp_path)
    first, second = checksums(release), checksums(again)
    reproducible = [name for name in first if name.startswith(("parquet/", "csv/")) or name == "datapackage.json"]
    assert len(reproducible) == 2 * len(PKG.tables) + 1
    for name in reproducible:
        assert first[name] == second[name], name


def test_descriptor_lists_csv_and_parquet_with_bytes_and_hash(release):
    import hashlib

    desc = json.loads((release / "datapackage.json").read_text())
    assert desc["version"] == "9.9.9" and desc["licenses"] and desc["created"].endswith("Z")
    assert [r["name"] for r in desc["resources"]] == list(PKG.tables)
    for res in desc["resources"]:
        assert res["path"] == f"csv/{res['name']}.csv" and res["x-parquet"]["path"] == f"parquet/{res['name']}.parquet"
        for meta in (res, res["x-parquet"]):
            data = (release / meta["path"]).read_bytes()
            assert meta["bytes"] == len(data) and meta["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()


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


def test_rebuilding_a_version_from_the_same_inputs_is_a_verified_no_op(tmp_path):
    root = valid_package(tmp_path)
    out = tmp_path / "dist"
    first = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out))
    assert first.returncode == 0, first.stderr
    release = out / "model-atlas-0.1.0"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in release.rglob("*") if p.is_file()}
    again = run_cli("build", "--root", str(root), "--out", str(out))  # the README's command, run a second time
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"{release} already holds version 0.1.0 built from these inputs (as of {AS_OF}); verified, left unchanged\n"
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in release.rglob("*") if p.is_file()} == before


def test_other_content_under_an_existing_version_is_refused(tmp_path):
    root = valid_package(tmp_path)
    out = tmp_path / "dist"
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out)).returncode == 0
    release = out / "model-atlas-0.1.0"
    before = (release / "SHA256SUMS").read_bytes()
    other_day = run_cli("build", "--root", str(root), "--as-of", "2026-11-24", "--out", str(out))
    assert other_day.returncode == 1
    assert f"{release} already exists with the same data but as of {AS_OF}, not 2026-11-24" in other_day.stderr
    models = root / "data" / "models.csv"
    models.write_text(models.read_text(encoding="utf-8").replace(",8192,", ",4096,"), encoding="utf-8")
    changed = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out))
    assert changed.returncode == 1
    assert f"error: {release} already exists with other content" in changed.stderr
    assert "releases are immutable: set a new version in datapackage.json or pass --version" in changed.stderr
    assert (release / "SHA256SUMS").read_bytes() == before


def test_a_damaged_existing_release_is_not_taken_for_a_rebuild(tmp_path):
    root = valid_package(tmp_path)
    out = tmp_path / "dist"
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out)).returncode == 0
    (out / "model-atlas-0.1.0" / "NOTES.md").write_text("tampered\n")
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out))
    assert proc.returncode == 1 and "already exists but does not verify (NOTES.md: sha256 does not match SHA256SUMS)" in proc.stderr


def release_info(release: Path) -> dict[str, str]:
    con = duckdb.connect(str(release / "model-atlas.duckdb"), read_only=True)
    try:
        return dict(con.execute("SELECT key, value FROM release_info").fetchall())
    finally:
        con.close()


def fixture_checkout(tmp_path: Path) -> Path:
    """The fixture package as a clean git checkout of its own."""
    (tmp_path / "pkg").mkdir()
    return git_repo(valid_package(tmp_path / "pkg"))


def no_epoch() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}


def test_a_clean_checkout_is_built_at_its_commit_time(tmp_path):
    root = fixture_checkout(tmp_path)
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(tmp_path / "dist"), env=no_epoch())
    assert proc.returncode == 0, proc.stderr
    release = tmp_path / "dist" / "model-atlas-0.1.0"
    info = release_info(release)
    commit_time = git(root, "log", "-1", "--format=%cI").strip()
    assert info["source_commit"] == git(root, "rev-parse", "HEAD").strip() and info["dirty"] == "false"
    assert info["build_time_from"] == "commit" and info["build_time"][:19] == commit_time[:19] == "2026-11-20T12:00:00"
    notes = (release / "NOTES.md").read_text()
    assert "(the time of the source commit)" in notes and "uncommitted changes" not in notes


def test_a_dirty_tree_says_so_and_is_not_dated_by_its_commit(tmp_path):
    root = fixture_checkout(tmp_path)
    models = root / "data" / "models.csv"
    models.write_text(models.read_text(encoding="utf-8").replace(",8192,", ",4096,"), encoding="utf-8")
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(tmp_path / "dist"), env=no_epoch())
    assert proc.returncode == 0, proc.stderr
    release = tmp_path / "dist" / "model-atlas-0.1.0"
    info = release_info(release)
    assert info["dirty"] == "true" and info["source_commit"] == git(root, "rev-parse", "HEAD").strip() + "-dirty"
    assert info["build_time_from"] == "clock" and info["build_time"][:10] == utc_today()
    assert json.loads((release / "datapackage.json").read_text())["x-model-atlas"]["dirty"] is True
    notes = (release / "NOTES.md").read_text()
    assert "(the time of the build: the tree had uncommitted changes)" in notes
    assert "**Built from a tree with uncommitted changes**" in notes
    assert "2026-11-20T12:00:00" not in notes  # the commit's time (conftest.GIT_ENV) is not passed off as the build's


def test_a_source_archive_without_git_builds(tmp_path):
    """A release page's source archive, unpacked inside some other git checkout: its data builds as it is, and the
    surrounding repository's commit is not taken for its own."""
    (tmp_path / "README").write_text("another project\n")
    outer = git_repo(tmp_path)
    (outer / "model-atlas-src").mkdir()
    root = review_today(valid_package(outer / "model-atlas-src"))
    proc = run_cli("build", "--root", str(root), "--out", str(tmp_path / "dist"), env=no_epoch())
    assert proc.returncode == 0, proc.stderr
    info = release_info(tmp_path / "dist" / "model-atlas-0.1.0")
    assert info["source_commit"] == "unknown" and info["build_time_from"] == "clock"
    notes = (tmp_path / "dist" / "model-atlas-0.1.0" / "NOTES.md").read_text()
    assert "(the time of the build: no git commit to take it from)" in notes


def test_notes_list_counts_and_changes_against_a_previous_release(release, tmp_path):
    notes = (release / "NOTES.md").read_text()
    assert f"| models | {len(csv_rows('models'))} |" in notes
    # a second release compared with the first: nothing changed
    proc = run_cli("build", "--root", str(REPO), "--out", str(tmp_path), "--version", "9.9.10", "--previous", str(release))
    assert proc.returncode == 0, proc.stderr
    notes2 = (tmp_path / "model-atlas-9.9.10" / "NOTES.md").read_text()
    assert "Changes from release 9.9.9" in notes2 and "| models | 0 | 0 | 0 |" in notes2


def test_query_prints_table_csv_and_json(release):
    model = next(r for r in csv_rows("models") if r["params_total"])
    sql = f"SELECT model_id, params_total FROM models WHERE model_id = '{model['model_id']}'"
    table = run_cli("query", sql, "--release", str(release))
    assert table.returncode == 0 and model["model_id"] in table.stdout and "(1 row)" in table.stdout
    as_csv = run_cli("query", sql, "--release", str(release), "--format", "csv")
    row = {r["model_id"]: r for r in csv.DictReader(as_csv.stdout.splitlines())}[model["model_id"]]
    assert row["params_total"] == model["params_total"]
    as_json = run_cli("query", sql, "--release", str(release), "--format", "json")
    assert json.loads(as_json.stdout)[0]["model_id"] == model["model_id"]


DUCKDB1 = REPO / ".venv-duckdb1"


def duckdb1_python() -> Path:
    """A separate environment holding a DuckDB 1.x client (created on first use; MODEL_ATLAS_DUCKDB1_VENV names an existing one)."""
    py = Path(os.environ.get("MODEL_ATLAS_DUCKDB1_VENV", DUCKDB1)) / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(py.parent.parent)], check=True)
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
    assert int(old_count) == int(new_count) == len({r["model_id"] for r in csv_rows("model_classes") if r["class_id"] == "mixture-of-experts"})


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
    con = duckdb.connect(str(release / "model-atlas.duckdb"), read_only=True)
    counts = json.loads(dict(con.execute("SELECT key, value FROM release_info").fetchall())["row_counts"])
    con.close()
    assert rows == counts | {"total": sum(counts.values())}
    assert "the keys cost" in proc.stdout.splitlines()[-1]
    missing = subprocess.run([sys.executable, str(script), str(release / "nope")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_build_under_a_tight_memory_cap_gives_the_same_release(tmp_path):
    """A small --memory-limit gives the same release and leaves nothing over (on the fixture: the real data's
    least workable cap grows with every row; the 1,000,000-model benchmark measures that)."""
    root = valid_package(tmp_path)
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    plain = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(tmp_path / "plain"), env=env)
    assert plain.returncode == 0, plain.stderr
    out = tmp_path / "dist"
    capped = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--memory-limit", "32MB", env=env)
    assert capped.returncode == 0, capped.stderr
    assert sorted(p.name for p in out.iterdir()) == ["model-atlas-0.1.0"], "the spill directory is removed"
    first, second = checksums(tmp_path / "plain" / "model-atlas-0.1.0"), checksums(out / "model-atlas-0.1.0")
    for name in [n for n in first if n.startswith(("parquet/", "csv/"))] + ["datapackage.json"]:
        assert first[name] == second[name], name
    assert run_cli("verify", str(out / "model-atlas-0.1.0")).returncode == 0


def test_build_memory_limit_too_small_or_malformed(tmp_path):
    out = tmp_path / "dist"
    starved = run_cli("build", "--root", str(REPO), "--out", str(out), "--version", "9.9.8", "--memory-limit", "4MB")
    assert starved.returncode == 2
    assert "needs more memory than --memory-limit 4MB allows; nothing was written" in starved.stderr
    assert not out.exists() or list(out.iterdir()) == []
    bad = run_cli("build", "--root", str(REPO), "--out", str(out), "--memory-limit", "lots")
    assert bad.returncode == 2 and "'lots' is not a memory size" in bad.stderr
