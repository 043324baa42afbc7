"""Benchmark: validate and build a large synthetic package; compare with frictionless and a bare DuckDB scan.

    python benchmarks/bench.py [--rows 1000000] [--skip-frictionless] [--keep DIR]

Generates a package with the project's real descriptor and schemas, `rows` models and a
model_classes row, six citations and a review per model, an architecture row (two citations) for every tenth
model (about 9.2 x rows rows in all), plus a few
injected defects of each kind; then prints wall time, rows/s and peak RSS for each engine and
checks that both engines found the same defects. Record the printed figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
AS_OF = "2026-11-23"
BIN = Path(sys.executable).parent

# (table, row index, column, bad value): each must be reported by both engines
DEFECTS = [
    ("models", 1001, "params_total", "7B"),  # type
    ("models", 2002, "kind", "modle"),  # enum
    ("models", 3003, "organization", ""),  # required
    ("models", 4004, "context_length", "0"),  # minimum
    ("model_classes", 5005, "class_id", "mixture-of-expert"),  # foreign key
    ("reviews", 6006, "reviewer", "Not A Handle"),  # pattern
    ("sources", 77, "published", "2024-13-01"),  # type (date)
]


def generate(root: Path, n: int) -> dict[str, int]:
    """Write a valid package of n models (with every link it needs), then inject DEFECTS."""
    shutil.copy(REPO / "datapackage.json", root)
    shutil.copytree(REPO / "schemas", root / "schemas")
    data = root / "data"
    data.mkdir()
    n_sources = max(100, n // 100)
    bad = {(t, i, c): v for t, i, c, v in DEFECTS}
    header = {}
    resources = json.loads((REPO / "datapackage.json").read_text())["resources"]
    for res in resources:
        header[res["name"]] = json.loads((REPO / res["schema"]).read_text())["fields"]

    def write(name, rows):
        cols = [f["name"] for f in header[name]]
        count = 0
        with open(data / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(cols) + "\n")
            for i, row in enumerate(rows):
                cells = [bad.get((name, i, c), row.get(c, "")) for c in cols]
                fh.write(",".join(cells) + "\n")
                count += 1
        return count

    counts = {}
    counts["classes"] = write(
        "classes",
        [
            {
                "class_id": "neural-network",
                "name": "Neural network",
                "facet": "architecture",
                "summary": "Root class of the synthetic tree.",
                "membership": "curated",
            },
            {
                "class_id": "mixture-of-experts",
                "name": "Mixture of experts",
                "facet": "architecture",
                "parent_class_id": "neural-network",
                "summary": "Sparse models for the benchmark (none here).",
                "membership": "concept",
            },
            {
                "class_id": "decoder-only",
                "name": "Decoder-only",
                "facet": "architecture",
                "parent_class_id": "neural-network",
                "summary": "Dense decoders for the benchmark.",
                "membership": "curated",
            },
        ],
    )
    counts["sources"] = write(
        "sources",
        (
            {
                "source_id": f"src-{i}",
                "url": f"https://example.org/papers/{i}",
                "title": f"Synthetic paper {i}",
                "publisher": "Synthetic Lab",
                "kind": "paper",
                "tier": "primary",
                "published": "2024-01-15",
                "accessed": "2026-11-01",
            }
            for i in range(n_sources)
        ),
    )
    counts["models"] = write(
        "models",
        (
            {
                "model_id": f"m-{i}",
                "name": f"Model {i}",
                "kind": "model",
                "organization": "Synthetic Lab",
                "release_date": "2024-03",
                "params_total": str(1_000_000 + i),
                "context_length": "8192",
                "license": "Apache-2.0",
                "input_modalities": "text",
                "output_modalities": "text",
                "summary": "A synthetic model for the benchmark.",
            }
            for i in range(n)
        ),
    )
    counts["model_classes"] = write("model_classes", ({"model_id": f"m-{i}", "class_id": "decoder-only"} for i in range(n)))
    counts["model_relations"] = write("model_relations", [])
    # every tenth model publishes its architecture (as open-weight models do)
    counts["architectures"] = write("architectures", ({"model_id": f"m-{i}", "layers": "32", "hidden_size": "4096"} for i in range(0, n, 10)))

    def citations():
        for i in range(n):
            if i % 10 == 0:
                for field in ("hidden_size", "layers"):
                    yield {"table_name": "architectures", "row_id": f"m-{i}", "field": field, "source_id": f"src-{i % n_sources}", "locator": "config.json"}
            for field in ("context_length", "input_modalities", "license", "output_modalities", "params_total", "release_date"):
                yield {"table_name": "models", "row_id": f"m-{i}", "field": field, "source_id": f"src-{i % n_sources}", "locator": "Table 1"}

    counts["citations"] = write("citations", citations())
    counts["reviews"] = write(
        "reviews",
        (
            {
                "review_id": f"rev-{i}",
                "table_name": "models",
                "row_id": f"m-{i}",
                "reviewer": "model-atlas-curators",
                "reviewed_on": "2026-11-01",
                "verdict": "confirmed",
                "confidence": "medium",
                "note": "Synthetic review for the benchmark.",
            }
            for i in range(n)
        ),
    )
    for cid in ("neural-network", "mixture-of-experts", "decoder-only"):
        with open(data / "reviews.csv", "a", encoding="utf-8") as fh:
            fh.write(f"rev-class-{cid},classes,{cid},model-atlas-curators,2026-11-01,confirmed,medium,,,,Synthetic class review.\n")
    shutil.copy(REPO / "data" / "confidence_levels.csv", data)
    counts["confidence_levels"] = 3
    for name in ("fact_history", "class_rules", "fact_gaps"):  # present, empty
        counts[name] = write(name, [])
    return counts


def measured(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS in MB of the child, result) for one command."""
    wrapper = (
        "import resource, subprocess, sys, json;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode, p.stdout[-20000000:], p.stderr[-5000:]]))"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t
    rss_kb, code, stdout, stderr = json.loads(out.stdout)
    return wall, rss_kb / 1024, subprocess.CompletedProcess(cmd, code, stdout, stderr)


def bare_scan_seconds(root: Path, every_cell: bool = False) -> float:
    """A bare DuckDB scan of the package's CSVs: count(*) (DuckDB may skip converting cells), or, with
    every_cell, every cell read into a table (the least work that still looks at all the data)."""
    import duckdb

    con = duckdb.connect()
    t = time.perf_counter()
    for i, csv_path in enumerate(sorted((root / "data").glob("*.csv"))):
        source = f"read_csv('{csv_path}', all_varchar=true, header=true)"
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM {source}" if every_cell else f"SELECT count(*) FROM {source}").fetchall()
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="model rows (default 1,000,000)")
    parser.add_argument("--skip-frictionless", action="store_true", help="do not run the (slow) frictionless comparison")
    parser.add_argument("--keep", type=Path, default=None, help="generate into this directory and keep it")
    args = parser.parse_args()

    from pipelines.checks.reference import comparable, fast_as_frictionless
    from pipelines.package.findings import Finding

    root = args.keep or Path(tempfile.mkdtemp(prefix="model-atlas-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    counts = generate(root, args.rows)
    total = sum(counts.values())
    size = sum(p.stat().st_size for p in (root / "data").glob("*.csv"))
    print(f"generated {total:,} rows ({counts['models']:,} models) in {size / 1e6:.0f} MB of CSV in {time.perf_counter() - t:.1f} s")

    wall, rss, proc = measured([str(BIN / "model-atlas"), "validate", "--root", str(root), "--as-of", AS_OF, "--format", "json"])
    report = json.loads(proc.stdout)
    ours = [Finding(**f) for f in report["findings"]]
    print(f"model-atlas validate : {wall:7.2f} s  {total / wall:12,.0f} rows/s  peak RSS {rss:7.0f} MB  ({report['errors']} errors)")
    scan = min(bare_scan_seconds(root) for _ in range(3))
    print(f"bare DuckDB CSV scan : {scan:7.2f} s  -> validate is {wall / scan:.1f}x a count(*) scan (target <= 3x)")
    load = min(bare_scan_seconds(root, every_cell=True) for _ in range(3))
    print(f"DuckDB CSV load      : {load:7.2f} s  -> validate is {wall / load:.1f}x a scan that reads every cell into a table")

    bwall, brss, bproc = measured([str(BIN / "model-atlas"), "build", "--root", str(root), "--as-of", AS_OF, "--out", str(root / "dist")])
    print(f"model-atlas build    : {bwall:7.2f} s  peak RSS {brss:7.0f} MB  (exit {bproc.returncode}: refused, the package has defects)")
    fixed = root.with_name(root.name + "-clean")
    if fixed.exists():
        shutil.rmtree(fixed)
    shutil.copytree(root, fixed, ignore=shutil.ignore_patterns("dist"))
    clean_counts = generate_clean_copy(fixed, args.rows)
    bwall, brss, bproc = measured([str(BIN / "model-atlas"), "build", "--root", str(fixed), "--as-of", AS_OF, "--out", str(fixed / "dist")])
    print(
        f"model-atlas build    : {bwall:7.2f} s  peak RSS {brss:7.0f} MB  on the same package without defects (exit {bproc.returncode}; targets < 30 s, < 2048 MB)"
    )
    assert bproc.returncode == 0, bproc.stderr
    del clean_counts

    injected = len(DEFECTS)
    found = {(f.file, f.code) for f in ours}
    print(f"injected defects     : {injected}; fast engine reported {len(ours)} findings over {len(found)} (file, rule) pairs")

    if not args.skip_frictionless:
        fwall, frss, fproc = measured([str(BIN / "frictionless"), "validate", "--json", str(root / "datapackage.json")], cwd=root)
        freport = json.loads(fproc.stdout)
        theirs = set()
        for task in freport.get("tasks", []):
            file = Path(task.get("place", "")).relative_to(root).as_posix() if Path(task.get("place", "")).is_absolute() else task.get("place", "")
            for e in task.get("errors", []):
                theirs.add(comparable(file, e.get("rowNumber") or 0, e.get("fieldName") or "", e["type"]))
        mine = fast_as_frictionless(ours)
        print(f"frictionless validate: {fwall:7.2f} s  {total / fwall:12,.0f} rows/s  peak RSS {frss:7.0f} MB")
        print(f"speed-up             : {fwall / wall:.1f}x (target >= 50x)")
        print(f"same findings        : {mine == theirs} ({len(mine)} vs {len(theirs)})")
        if mine != theirs:
            print("  only ours  :", sorted(mine - theirs)[:10])
            print("  only theirs:", sorted(theirs - mine)[:10])
            return 1
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(fixed, ignore_errors=True)
    return 0


def generate_clean_copy(root: Path, n: int) -> dict[str, int]:
    """Regenerate root without the injected defects (for the build benchmark)."""
    global DEFECTS
    saved, DEFECTS = DEFECTS, []
    try:
        shutil.rmtree(root)
        root.mkdir()
        return generate(root, n)
    finally:
        DEFECTS = saved


if __name__ == "__main__":
    sys.exit(main())
