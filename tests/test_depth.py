"""Depth: facts declared in the schemas flow into the release as declared (size bands from class ranges,
month dates, review state), lineage and fact history are queryable, coverage counts what is stated,
and curated records ingest into every table at once."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import AS_OF, REPO, run_cli, valid_package


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def _band_package(root: Path) -> Path:
    """The valid fixture plus a derived size-band class and a lineage chain."""
    valid_package(root)
    _edit(
        root / "data/classes.csv",
        "small-language-model,",
        'scale-medium,Medium (1B to 10B parameters),,,scale,,,"Size band from 1B (inclusive) to 10B (exclusive) parameters.",1000000000,10000000000,,,derived\n'
        "small-language-model,",
    )
    _edit(
        root / "data/reviews.csv",
        "rev-small-language-model,",
        'rev-scale-medium,classes,scale-medium,model-atlas-curators,2026-11-01,confirmed,medium,,,,"Derived band."\nrev-small-language-model,',
    )
    _edit(
        root / "data/model_relations.csv",
        "assistant-app,uses-model,dense-7b,,\n",
        "assistant-app,uses-model,dense-7b,,\nsparse-8x1b,continued-pretraining-from,dense-7b,example-paper,Section 3\n",
    )
    return root


@pytest.fixture(scope="module")
def band_release(tmp_path_factory) -> Path:
    root = _band_package(tmp_path_factory.mktemp("pkg"))
    out = tmp_path_factory.mktemp("dist")
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out), "--version", "9.9.9")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "model-atlas-9.9.9"


def _query(release: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(release / "model-atlas.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_size_bands_are_derived_from_the_class_ranges(band_release):
    rows = _query(band_release, "SELECT model_id, class_id, derived FROM model_classes ORDER BY ALL")
    assert ("dense-7b", "scale-medium", True) in rows and ("sparse-8x1b", "scale-medium", True) in rows
    assert ("dense-7b", "small-language-model", False) in rows
    bands = dict(_query(band_release, "SELECT model_id, size_band FROM models"))
    assert bands == {"assistant-app": None, "dense-7b": "scale-medium", "sparse-8x1b": "scale-medium"}
    # the same through a second reader, from the Parquet file
    table = pq.read_table(band_release / "parquet" / "model_classes.parquet").to_pylist()
    assert {(r["model_id"], r["class_id"], r["derived"]) for r in table} == set(rows)


def test_month_dates_become_dates_with_their_precision(band_release):
    got = _query(band_release, "SELECT model_id, knowledge_cutoff, knowledge_cutoff_precision, release_date_precision FROM models WHERE model_id = 'dense-7b'")
    assert str(got[0][1]) == "2023-12-01" and got[0][2] == "month" and got[0][3] == "day"


def test_lineage_and_fact_timeline_views(band_release):
    assert _query(band_release, "SELECT model_id, ancestor_id, depth FROM model_lineage") == [("sparse-8x1b", "dense-7b", 1)]
    assert _query(band_release, "SELECT model_id FROM model_lineage WHERE ancestor_id = 'dense-7b'") == [("sparse-8x1b",)]
    at = "SELECT value FROM fact_timeline WHERE model_id = 'sparse-8x1b' AND field = 'context_length' AND valid_from <= DATE '{0}' AND (valid_to IS NULL OR DATE '{0}' < valid_to)"
    assert _query(band_release, at.format("2024-05-01")) == [("16384",)]
    assert _query(band_release, at.format("2025-01-01")) == [("32768",)]
    current = _query(
        band_release, "SELECT CAST(m.context_length AS VARCHAR) = t.value FROM models m JOIN fact_timeline t USING (model_id) WHERE t.valid_to IS NULL"
    )
    assert current == [(True,)]


def test_architecture_rows_carry_their_models_confidence(band_release):
    rows = _query(
        band_release, "SELECT a.model_id, a.confidence = m.confidence, a.last_reviewed = m.last_reviewed FROM architectures a JOIN models m USING (model_id)"
    )
    assert sorted(rows) == [("dense-7b", True, True), ("sparse-8x1b", True, True)]


def test_coverage_counts_stated_documented_and_missing(tmp_path):
    root = valid_package(tmp_path)
    proc = run_cli("coverage", "--root", str(root), "--as-of", AS_OF, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = {(r.split(",")[0], r.split(",")[1]): r.split(",")[2:] for r in proc.stdout.splitlines()[1:]}
    # rows, stated, primary, unpublished, not_applicable, unverified, missing
    assert rows[("models", "license")] == ["2", "1", "1", "1", "0", "0", "0"]
    assert rows[("models", "params_active")] == ["2", "1", "1", "0", "1", "0", "0"]  # dense-7b: not a sparse model
    assert rows[("architectures", "experts_total")] == ["2", "1", "1", "0", "1", "0", "0"]
    assert rows[("models", "max_output_tokens")] == ["2", "0", "0", "0", "0", "0", "2"]


RECORD = {
    "model_id": "dense-1b",
    "name": "Dense 1B",
    "kind": "model",
    "organization": "Example Org",
    "release_date": "2024-04",
    "params_total": 1000000000,
    "context_length": 4096,
    "open_weights": True,
    "license": "Apache-2.0",
    "input_modalities": ["text"],
    "output_modalities": ["text"],
    "architecture": {"layers": 16, "attention_type": "grouped-query"},
    "classes": ["small-language-model", "scale-medium"],
    "relations": [{"relation": "distilled-from", "target_id": "dense-7b", "source_id": "example-paper", "locator": "Section 4"}],
    "summary": "A one-billion-parameter dense decoder distilled from the 7B fixture model.",
    "citations": {
        "*": {"source_id": "example-paper", "locator": "Table 3"},
        "release_date": {"source_id": "example-paper", "locator": "Section 4"},
        "params_total": {"source_id": "example-paper", "locator": "Table 3"},
        "context_length": {"source_id": "example-paper", "locator": "Table 3"},
        "open_weights": {"source_id": "example-paper", "locator": "Section 5"},
        "license": {"source_id": "example-paper", "locator": "Section 5"},
        "input_modalities": {"source_id": "example-paper", "locator": "Section 2"},
        "output_modalities": {"source_id": "example-paper", "locator": "Section 2"},
        "architecture.layers": {"source_id": "example-paper", "locator": "Table 3"},
        "architecture.attention_type": {"source_id": "example-paper", "locator": "Table 3"},
    },
    "unpublished": ["training_tokens", "knowledge_cutoff"],
    "confidence": "high",
    "note": "Checked every stated fact against the example report.",
}


def _write_jsonl(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_ingest_writes_every_table_and_the_result_validates(tmp_path):
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    records = _write_jsonl(tmp_path / "r.jsonl", RECORD)
    proc = run_cli("ingest", str(records), "--root", str(root), "--reviewer", "model-atlas-curators", "--date", "2026-11-20")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped: dense-1b: class scale-medium (size bands are derived)" in proc.stdout
    data = root / "data"
    assert "dense-1b,Dense 1B,model,,Example Org,2024-04,1000000000,,4096,true," in (data / "models.csv").read_text(encoding="utf-8")
    assert "dense-1b,16," in (data / "architectures.csv").read_text(encoding="utf-8")
    assert "dense-1b,distilled-from,dense-7b,example-paper,Section 4" in (data / "model_relations.csv").read_text(encoding="utf-8")
    assert "models,dense-1b,training_tokens,unpublished," in (data / "fact_gaps.csv").read_text(encoding="utf-8")
    assert "rev-dense-1b-2026-11-20,models,dense-1b,model-atlas-curators,2026-11-20,confirmed,high" in (data / "reviews.csv").read_text(encoding="utf-8")
    assert run_cli("fmt", "--root", str(root)).returncode == 0
    check = run_cli("validate", "--root", str(root), "--as-of", AS_OF)
    assert check.returncode == 0, check.stdout


def test_ingest_update_fills_but_never_overwrites(tmp_path):
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    before = (root / "data/models.csv").read_text(encoding="utf-8")
    update = {
        "model_id": "dense-7b",
        "update": True,
        "context_length": 4096,
        "max_output_tokens": 2048,
        "name": "Dense 7B Renamed",
        "organization": "Other Org",
        "citations": {"max_output_tokens": {"source_id": "example-paper", "locator": "Table 1"}},
    }
    proc = run_cli("ingest", str(_write_jsonl(tmp_path / "u.jsonl", update)), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1
    assert "conflict (not changed):" in proc.stdout and "dense-7b.context_length is '8192', the record says '4096'" in proc.stdout
    assert "filled: dense-7b: max_output_tokens" in proc.stdout
    # a differing name or organisation is reported, never applied (attack round 4: it was silently ignored)
    assert "dense-7b.name is 'Dense 7B', the record says 'Dense 7B Renamed' (an update leaves it unchanged)" in proc.stdout
    assert "dense-7b.organization is 'Example Org', the record says 'Other Org'" in proc.stdout
    after = (root / "data/models.csv").read_text(encoding="utf-8")
    assert after != before and ",8192,true,2048," in after and "Renamed" not in after and "Other Org" not in after


def test_ingest_refuses_a_broken_record_and_writes_nothing(tmp_path):
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    before = {p.name: p.read_bytes() for p in (root / "data").iterdir()}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(RECORD) + "\n{not json\n", encoding="utf-8")
    proc = run_cli("ingest", str(bad), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1
    assert f"{bad}:2: not a JSON object" in proc.stderr and "Nothing was written" in proc.stderr
    dup = _write_jsonl(tmp_path / "dup.jsonl", {**RECORD, "model_id": "dense-7b"})
    proc = run_cli("ingest", str(dup), "--root", str(root), "--reviewer", "model-atlas-curators")
    assert proc.returncode == 1 and "dense-7b is already in models; send an update record instead" in proc.stderr
    assert {p.name: p.read_bytes() for p in (root / "data").iterdir()} == before


def test_real_data_release_projection_matches_schemas():
    """Every declared derived column of the real schemas is in the release columns (one source of truth)."""
    from pipelines.package.descriptor import load_package
    from pipelines.release.schema import release_columns

    pkg = load_package(REPO)
    for table in pkg.tables.values():
        names = [c.name for c in release_columns(table)]
        for f in table.fields:
            assert f.name in names
            if "month" in f.date_precision:
                assert f"{f.name}_precision" in names
        for spec in table.ext.get("x-derived-columns", []):
            assert spec["name"] in names


def test_release_carries_a_dataset_card_mapping_every_table_to_its_parquet(band_release):
    import yaml

    text = (band_release / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "cc-by-4.0"
    configs = {c["config_name"]: c["data_files"][0]["path"] for c in front["configs"]}
    tables = {p.stem for p in (band_release / "parquet").glob("*.parquet")}
    assert set(configs) == tables
    assert all((band_release / path).is_file() for path in configs.values())
    assert "README.md" in (band_release / "SHA256SUMS").read_text(encoding="utf-8")


def test_citation_file_is_valid_cff():
    import yaml

    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "dataset" and cff["title"] and cff["authors"]


def test_an_update_that_states_a_fact_removes_its_gap_row(tmp_path):
    """Filling a fact documented as a gap left the gap row behind, which validate then refused
    (gap-but-stated): ingest and validate must agree."""
    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    gap = {"model_id": "dense-7b", "update": True, "unverified": ["max_output_tokens"], "note": "Could not reach the card."}
    proc = run_cli("ingest", str(_write_jsonl(tmp_path / "a.jsonl", gap)), "--root", str(root), "--reviewer", "model-atlas-curators", "--date", "2026-11-20")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "models,dense-7b,max_output_tokens,unverified," in (root / "data/fact_gaps.csv").read_text(encoding="utf-8")
    fill = {
        "model_id": "dense-7b",
        "update": True,
        "max_output_tokens": 2048,
        "citations": {"max_output_tokens": {"source_id": "example-paper", "locator": "Table 1"}},
    }
    proc = run_cli("ingest", str(_write_jsonl(tmp_path / "b.jsonl", fill)), "--root", str(root), "--reviewer", "model-atlas-curators", "--date", "2026-11-21")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dense-7b,max_output_tokens" not in (root / "data/fact_gaps.csv").read_text(encoding="utf-8")
    assert run_cli("fmt", "--root", str(root)).returncode == 0
    check = run_cli("validate", "--root", str(root), "--as-of", AS_OF)
    assert check.returncode == 0, check.stdout
