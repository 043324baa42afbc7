"""A release that the standard Data Package tool accepts (issue 15, item 5).

The release's datapackage.json describes each table's CSV rendition (csv/<table>.csv), with the Parquet
file beside it under x-parquet. These tests run `frictionless validate` through its own entry point on
real builds (the fixture package at a pinned date and the real data, which is checked for invariants
only), read the CSV back with frictionless and the Parquet file with pyarrow and polars, and tamper
with copies of a release to see verify and the snapshot reader refuse them with a sentence.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import AS_OF, REPO, run_cli, valid_package

from pipelines.package.descriptor import load_package
from pipelines.release.schema import release_columns

EPOCH = "1795392000"  # 2026-11-23T00:00:00Z
FIXTURE_TABLES = list(load_package(REPO).tables)
# a cell that needs quoting: an embedded quote, commas and a tab (validate refuses line breaks in cells)
AWKWARD = 'A dense decoder, "small" by design,\tused as a fixture.'


def build(root: Path, out: Path, *extra: str) -> Path:
    proc = run_cli("build", "--root", str(root), "--out", str(out), *extra, env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH})
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("model-atlas-*"))


def awkward_package(target: Path) -> Path:
    """The fixture package with a cell that needs quoting and a list of two items in models."""
    root = valid_package(target)
    models = root / "data" / "models.csv"
    text = models.read_text(encoding="utf-8")
    text = text.replace('"A small dense decoder used as a fixture."', '"' + AWKWARD.replace('"', '""') + '"')
    text = text.replace("Apache-2.0,text,text,false,true", "Apache-2.0,text|image,text,false,true")
    assert AWKWARD.split(",")[0] in text and "text|image" in text
    models.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def fixture_release(tmp_path_factory) -> Path:
    root = awkward_package(tmp_path_factory.mktemp("pkg"))
    return build(root, tmp_path_factory.mktemp("dist"), "--as-of", AS_OF)


@pytest.fixture(scope="module")
def real_release(tmp_path_factory) -> Path:
    """The real data, built as a contributor builds it (today in UTC); tests of it assert invariants only."""
    return build(REPO, tmp_path_factory.mktemp("dist"), "--version", "9.9.9")


def row_counts(release: Path) -> dict[str, int]:
    con = duckdb.connect(str(release / "model-atlas.duckdb"), read_only=True)
    try:
        return json.loads(dict(con.execute("SELECT key, value FROM release_info").fetchall())["row_counts"])
    finally:
        con.close()


def frictionless_cli(descriptor: Path) -> subprocess.CompletedProcess:
    """frictionless's own console script, installed beside this interpreter."""
    exe = Path(sys.executable).parent / "frictionless"
    assert exe.exists(), "frictionless is a dependency of model-atlas: pip install -e '.[dev]'"
    return subprocess.run([str(exe), "validate", "--json", str(descriptor)], capture_output=True, text=True, timeout=600, cwd=descriptor.parent)


@pytest.mark.parametrize("which", ["fixture_release", "real_release"])
def test_frictionless_validates_a_release(request, which):
    release = request.getfixturevalue(which)
    proc = frictionless_cli(release / "datapackage.json")
    report = json.loads(proc.stdout)
    errors = [(t["name"], e["type"], e.get("note", "")) for t in report["tasks"] for e in t["errors"]] + [(e["type"], e["note"]) for e in report["errors"]]
    assert proc.returncode == 0 and report["valid"] is True, errors[:10]
    counts = row_counts(release)
    # it really read every table, every row and every byte of the CSV renditions
    assert {t["name"]: t["place"] for t in report["tasks"]} == {n: f"csv/{n}.csv" for n in counts}
    assert {t["name"]: t["stats"]["rows"] for t in report["tasks"]} == counts and sum(counts.values()) > 0
    for t in report["tasks"]:
        data = (release / t["place"]).read_bytes()
        assert t["stats"]["bytes"] == len(data) and t["stats"]["sha256"] == hashlib.sha256(data).hexdigest()


def _rewrite_csv(release: Path, table: str, edit) -> None:
    """Edit a CSV rendition of a copied release and record its new bytes and hash in the descriptor (a consistent forgery)."""
    path = release / "csv" / f"{table}.csv"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    desc = json.loads((release / "datapackage.json").read_text(encoding="utf-8"))
    res = next(r for r in desc["resources"] if r["name"] == table)
    data = path.read_bytes()
    res["bytes"], res["hash"] = len(data), "sha256:" + hashlib.sha256(data).hexdigest()
    (release / "datapackage.json").write_text(json.dumps(desc, indent=2), encoding="utf-8")


@pytest.mark.parametrize(
    "table,edit,error",
    [
        ("model_classes", lambda t: t.replace(",mixture-of-experts,", ",no-such-class,", 1), "foreign-key"),
        ("models", lambda t: t.replace(",false,true,", ",no,true,", 1), "type-error"),
        ("models", lambda t: t.replace("dense-7b,Dense 7B", "assistant-app,Dense 7B", 1), "primary-key"),
        ("classes", lambda t: t.replace(",2026-", ",26-", 1), "type-error"),
    ],
    ids=["foreign-key", "boolean", "primary-key", "date"],
)
def test_frictionless_is_not_a_rubber_stamp(fixture_release, tmp_path, table, edit, error):
    """The descriptor's schemas carry what a release promises: one broken cell makes frictionless say INVALID."""
    import frictionless

    copy = shutil.copytree(fixture_release, tmp_path / "copy")
    _rewrite_csv(copy, table, edit)
    report = frictionless.validate(str(copy / "datapackage.json"))
    assert not report.valid
    found = {(t.name, e[0]) for t in report.tasks for e in t.flatten(["type"])}
    assert (table, error) in found, found


def _parquet_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("which", ["fixture_release", "real_release"])
def test_csv_rows_read_by_frictionless_equal_the_parquet_rows(request, which):
    """Row by row, in order: what frictionless reads from each CSV rendition (typed by the descriptor's schema)
    is what pyarrow and polars read from the Parquet file."""
    import frictionless
    import polars as pl

    release = request.getfixturevalue(which)
    package = frictionless.Package(str(release / "datapackage.json"))
    compared = 0
    for resource in package.resources:
        with resource:
            from_csv = [{k: float(v) if isinstance(v, Decimal) else v for k, v in row.to_dict().items()} for row in resource.row_stream]
        parquet = release / resource.custom["x-parquet"]["path"]
        by_arrow = _parquet_rows(parquet)
        by_polars = pl.read_parquet(parquet).to_dicts()
        assert from_csv == by_arrow == by_polars, resource.name
        compared += len(from_csv)
    assert compared == sum(row_counts(release).values()) > 0


def test_awkward_cells_are_quoted_as_rfc_4180_says_and_read_back(fixture_release):
    raw = (fixture_release / "csv" / "models.csv").read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n") and raw.decode("utf-8")
    assert b'"A dense decoder, ""small"" by design,\tused as a fixture."' in raw
    row = next(r for r in _parquet_rows(fixture_release / "parquet" / "models.parquet") if r["model_id"] == "dense-7b")
    assert row["summary"] == AWKWARD and row["input_modalities"] == ["text", "image"]
    lines = {li.split(",", 1)[0]: li for li in raw.decode("utf-8").splitlines()}
    # list items joined by |, booleans true/false, dates as YYYY-MM-DD (a month-only one as its first day), null as an empty cell
    assert ",text|image,text,false,true," in lines["dense-7b"] and ",2024-01-15,day,7000000000,,8192,true," in lines["dense-7b"]
    assert ",2024-03-01,month,6000000000,1500000000,32768,true," in lines["sparse-8x1b"]


def test_descriptor_schemas_follow_the_release_columns(fixture_release):
    desc = json.loads((fixture_release / "datapackage.json").read_text(encoding="utf-8"))
    pkg = load_package(REPO)
    assert [r["name"] for r in desc["resources"]] == list(pkg.tables) == FIXTURE_TABLES
    for res in desc["resources"]:
        table = pkg.table(res["name"])
        assert [(f["name"], f["type"]) for f in res["schema"]["fields"]] == [(c.name, c.type) for c in release_columns(table)]
        assert res["schema"]["primaryKey"] == list(table.primary_key) and res["schema"]["missingValues"] == [""]
        assert res["schema"].get("foreignKeys", []) == list(table.foreign_keys)
        for f in res["schema"]["fields"]:
            if f["type"] == "list":
                assert f["delimiter"] == "|" and f["itemType"] == "string"
            if f["type"] == "boolean":
                assert (f["trueValues"], f["falseValues"]) == (["true"], ["false"])
        assert res["format"] == "csv" and res["mediatype"] == "text/csv" and res["encoding"] == "utf-8"
        assert res["x-parquet"]["mediatype"] == "application/vnd.apache.parquet"
        header = (fixture_release / res["path"]).read_text(encoding="utf-8").split("\n", 1)[0]
        assert header == ",".join(f["name"] for f in res["schema"]["fields"])


def test_csv_renditions_are_byte_identical_across_builds(fixture_release, tmp_path):
    (tmp_path / "pkg").mkdir()
    again = build(awkward_package(tmp_path / "pkg"), tmp_path / "dist", "--as-of", AS_OF)
    names = sorted(p.name for p in (fixture_release / "csv").iterdir())
    assert names == sorted(f"{t}.csv" for t in FIXTURE_TABLES)
    for name in names:
        assert (again / "csv" / name).read_bytes() == (fixture_release / "csv" / name).read_bytes(), name
    assert (again / "datapackage.json").read_bytes() == (fixture_release / "datapackage.json").read_bytes()


# --- verify and the snapshot reader refuse forged releases -------------------------------------


def _resum(rel: Path) -> None:
    from pipelines.release.build import write_checksums

    (rel / "SHA256SUMS").unlink()
    write_checksums(rel)


def _set_descriptor(rel: Path, edit) -> None:
    desc = json.loads((rel / "datapackage.json").read_text(encoding="utf-8"))
    edit(next(r for r in desc["resources"] if r["name"] == "models"))
    (rel / "datapackage.json").write_text(json.dumps(desc, indent=2), encoding="utf-8")


def _index_of_models(rel: Path) -> int:
    desc = json.loads((rel / "datapackage.json").read_text(encoding="utf-8"))
    return [r["name"] for r in desc["resources"]].index("models")


def _flip_byte(rel: Path) -> None:
    path = rel / "csv" / "models.csv"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _in_duckdb(sql: str):
    def tamper(rel: Path) -> None:
        import duckdb

        con = duckdb.connect(str(rel / "model-atlas.duckdb"))
        con.execute(sql)
        con.close()

    return tamper


FORGERIES = {
    # attack round 5: the site and query read the DuckDB file, which verify only counted
    "duckdb-row-changed": (
        _in_duckdb("UPDATE models SET name = '=HYPERLINK(\"https://evil.example\")' WHERE model_id = 'dense-7b'"),
        True,
        "model-atlas.duckdb: 2 row(s) of its table models and of parquet/models.parquet differ",
    ),
    "duckdb-view-replaced": (
        _in_duckdb("CREATE OR REPLACE VIEW model_overview AS SELECT * FROM models WHERE false"),
        True,
        "model-atlas.duckdb: the view model_overview does not have the columns model-atlas defines it with",
    ),
    "duckdb-view-filtered": (
        _in_duckdb(
            "CREATE OR REPLACE VIEW fact_citations AS SELECT * FROM (SELECT c.table_name, c.row_id, c.field, c.source_id, c.locator, s.url, s.title, s.tier "
            "FROM citations c JOIN sources s USING (source_id)) WHERE false"
        ),
        True,
        "model-atlas.duckdb: the view fact_citations",
    ),
    "csv-blank-line": (
        lambda rel: _rewrite_csv(rel, "models", lambda t: t + "\n"),
        True,
        "csv/models.csv: holds a blank line; a release's CSV files hold one row a line",
    ),
    "csv-no-final-newline": (
        lambda rel: _rewrite_csv(rel, "models", lambda t: t.rstrip("\n")),
        True,
        "csv/models.csv: does not end with a newline; a release's CSV files hold one row a line",
    ),
    "duckdb-view-dropped": (
        _in_duckdb("DROP VIEW fact_timeline"),
        True,
        "model-atlas.duckdb: its views differ from the release views (missing: ['fact_timeline']",
    ),
    # name: (tamper, regenerate SHA256SUMS afterwards, the problem verify must name)
    "tampered-csv": (_flip_byte, False, "csv/models.csv: sha256 does not match SHA256SUMS"),
    "tampered-csv-resummed": (_flip_byte, True, "csv/models.csv: sha256 differs from datapackage.json /resources/{i}/hash"),
    "changed-row-forged-consistently": (
        lambda rel: _rewrite_csv(rel, "models", lambda t: t.replace("Sparse 8x1B", "Sparse 9x1B")),
        True,
        "csv/models.csv: 3 rows, 2 of them (with those of the Parquet file) not in parquet/models.parquet, which has 3",
    ),
    "added-row-forged-consistently": (
        lambda rel: _rewrite_csv(rel, "models", lambda t: t + t.splitlines()[-1] + "\n"),
        True,
        "csv/models.csv: 4 rows, 1 of them (with those of the Parquet file) not in parquet/models.parquet, which has 3",
    ),
    "header-renamed": (
        lambda rel: _rewrite_csv(rel, "models", lambda t: t.replace("model_id,name,", "model_id,title,", 1)),
        True,
        "csv/models.csv: its header is not the column names of datapackage.json's schema for models",
    ),
    "missing-csv": (lambda rel: (rel / "csv" / "models.csv").unlink(), True, "csv/models.csv: missing (resource models)"),
    "extra-csv": (
        lambda rel: shutil.copy(rel / "csv" / "models.csv", rel / "csv" / "models_old.csv"),
        True,
        "csv/models_old.csv: not a file of this release (datapackage.json describes no such file); remove it",
    ),
    "extra-top-level-file": (
        lambda rel: (rel / "run-me.sh").write_text("echo hi\n"),
        True,
        "run-me.sh: not a file of this release (datapackage.json describes no such file); remove it",
    ),
    "missing-readme": (lambda rel: (rel / "README.md").unlink(), True, "README.md: missing; a release has datapackage.json, model-atlas.duckdb"),
    "x-parquet-dotdot": (
        lambda rel: _set_descriptor(rel, lambda r: r["x-parquet"].update(path="../secret.parquet")),
        True,
        "datapackage.json: /resources/{i}/x-parquet/path must be 'parquet/models.parquet', not '../secret.parquet'",
    ),
    "x-parquet-absolute": (
        lambda rel: _set_descriptor(rel, lambda r: r["x-parquet"].update(path="/etc/passwd")),
        True,
        "datapackage.json: /resources/{i}/x-parquet/path must be 'parquet/models.parquet', not '/etc/passwd'",
    ),
    "x-parquet-absent": (
        lambda rel: _set_descriptor(rel, lambda r: r.pop("x-parquet")),
        True,
        "datapackage.json: /resources/{i}/x-parquet is missing or not an object",
    ),
    "csv-path-outside": (
        lambda rel: _set_descriptor(rel, lambda r: r.update(path="../../models.csv")),
        True,
        "datapackage.json: /resources/{i}/path must be 'csv/models.csv', not '../../models.csv'",
    ),
    "parquet-hash-forged": (
        lambda rel: _set_descriptor(rel, lambda r: r["x-parquet"].update(hash="sha256:" + "0" * 64)),
        True,
        "parquet/models.parquet: sha256 differs from datapackage.json /resources/{i}/x-parquet/hash",
    ),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_verify_refuses_a_forged_release_with_a_sentence(fixture_release, tmp_path, forgery):
    tamper, resum, expected = FORGERIES[forgery]
    rel = shutil.copytree(fixture_release, tmp_path / fixture_release.name)
    (tmp_path / "secret.parquet").write_bytes((rel / "parquet" / "models.parquet").read_bytes())
    tamper(rel)
    if resum:
        _resum(rel)
    proc = run_cli("verify", str(rel))
    assert proc.returncode == 1, proc.stdout
    expected = expected.format(i=_index_of_models(rel))
    assert f"{rel}/{expected}" in proc.stdout, proc.stdout
    assert "internal error" not in proc.stderr and proc.stdout.strip().endswith("do not use this release; download it again.")


def test_verify_compares_rows_not_bytes(fixture_release, tmp_path):
    """A CSV file quoted differently (by another writer) that holds the same rows still verifies: the rows are the contract."""
    rel = shutil.copytree(fixture_release, tmp_path / fixture_release.name)
    _rewrite_csv(rel, "models", lambda t: t.replace("dense-7b,Dense 7B,", 'dense-7b,"Dense 7B",', 1))
    _resum(rel)
    proc = run_cli("verify", str(rel))
    assert proc.returncode == 0, proc.stdout


def test_verify_passes_the_untouched_releases(fixture_release, real_release):
    for release in (fixture_release, real_release):
        proc = run_cli("verify", str(release))
        assert proc.returncode == 0 and proc.stdout == f"verified {release}: every file matches SHA256SUMS and datapackage.json\n"


@pytest.mark.parametrize("path", ["../secret.parquet", "/etc/passwd", "parquet/../../secret.parquet", "parquet/classes.parquet"])
def test_snapshot_reader_reads_only_the_tables_own_parquet_files(fixture_release, tmp_path, path):
    """load_release_snapshot (build --previous, the site) checks the descriptor again, whatever verify said: a
    hostile x-parquet path is refused before any SQL, and a good release reads from its Parquet files."""
    from pipelines.package.duck import open_duckdb
    from pipelines.package.snapshot import SnapshotError, load_release_snapshot

    good = open_duckdb(directories=[fixture_release])
    try:
        snap = load_release_snapshot(good, fixture_release, "old")
        assert set(snap.tables) == set(FIXTURE_TABLES) and snap.tables["models"]["key"] == ["model_id"]
        assert good.execute("SELECT count(*) FROM old_models").fetchone()[0] == row_counts(fixture_release)["models"]
    finally:
        good.close()
    rel = shutil.copytree(fixture_release, tmp_path / "rel")
    _set_descriptor(rel, lambda r: r["x-parquet"].update(path=path))
    con = open_duckdb(directories=[rel])
    try:
        with pytest.raises(
            SnapshotError, match=r"resource 'models' is not a table name with its files at csv/<name>.csv and \(x-parquet\) parquet/<name>.parquet"
        ):
            load_release_snapshot(con, rel, "old")
    finally:
        con.close()


def test_downloads_page_lists_every_file_with_size_and_sha256(fixture_release, tmp_path):
    out = tmp_path / "site"
    proc = run_cli("site", "--release", str(fixture_release), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (out / "downloads.html").read_text(encoding="utf-8")
    sums = [line.split("  ") for line in (fixture_release / "SHA256SUMS").read_text(encoding="utf-8").splitlines()]
    assert {name for _, name in sums} >= {f"csv/{t}.csv" for t in FIXTURE_TABLES} | {f"parquet/{t}.parquet" for t in FIXTURE_TABLES}
    for digest, name in sums:
        size = (fixture_release / name).stat().st_size
        assert f'<td>{name}</td><td>{size:,}</td><td><code class="hash">{digest}</code></td>' in page, name
    assert "frictionless validate datapackage.json" in page


def test_notes_and_dataset_card_say_which_file_is_which(fixture_release):
    import yaml

    notes = (fixture_release / "NOTES.md").read_text(encoding="utf-8")
    assert "## Files" in notes and "`csv/<table>.csv`: the same rows as CSV" in notes and "frictionless validate datapackage.json" in notes
    card = (fixture_release / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    assert {c["config_name"]: c["data_files"][0]["path"] for c in front["configs"]} == {t: f"parquet/{t}.parquet" for t in FIXTURE_TABLES}
    assert "`csv/<table>.csv` holds each table as CSV" in card


def test_number_cells_read_back_to_the_same_double():
    """No released column is a number today, but the schema profile allows them: their text must read back exactly,
    by frictionless (Decimal) as by float()."""
    import frictionless

    from pipelines.release.schema import Column, csv_cell_sql

    values = [0.1, 1 / 3, 1e-05, 1.2345678901234568e20, 100.0, -2.5, 5e-324, 1.7976931348623157e308]
    con = duckdb.connect()
    texts = [con.execute(f"SELECT {csv_cell_sql(Column('x', 'number', ''), '?::DOUBLE')}", [v]).fetchone()[0] for v in values]
    field = frictionless.fields.NumberField(name="x")
    assert [float(t) for t in texts] == values
    assert [float(field.read_cell(t)[0]) for t in texts] == values


def test_a_previous_release_with_a_forged_version_is_refused(fixture_release, tmp_path):
    """Attack round 6: a version with a line break and HTML, hashes regenerated, verified and reached
    NOTES.md through build --previous."""
    rel = shutil.copytree(fixture_release, tmp_path / fixture_release.name)
    desc = json.loads((rel / "datapackage.json").read_text(encoding="utf-8"))
    desc["version"] = "9.9.9\n<script>"
    (rel / "datapackage.json").write_text(json.dumps(desc), encoding="utf-8")
    _resum(rel)
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    out = tmp_path / "dist"
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "2.0.0", "--previous", str(rel))
    assert proc.returncode == 2 and "is not a version" in proc.stderr, proc.stdout + proc.stderr
    assert not (out / "model-atlas-2.0.0").exists()
