"""What the DuckDB file's keys cost: load a built release's Parquet files into a fresh DuckDB file twice.

    python benchmarks/build_floor.py dist/model-atlas-<version> [--root .]

Once with no constraints, once with the release's primary and foreign keys, created and loaded the
way `model-atlas build` does it (same DDL, same insert code, same storage format), one table at a
time with a CHECKPOINT after each so every table pays for its own index writing. Prints wall and CPU
seconds per table. The keyed load's CPU seconds, halved on this 2-core machine, are a floor under the
build's DuckDB stage that no scheduling can beat; add validation to get a floor under the build.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load(pkg, parquet: Path, keys: bool) -> dict[str, tuple[int, float, float]]:
    """{table: (rows, wall s, CPU s)} for loading every table into a new DuckDB file."""
    import duckdb

    from pipelines.package.sql import q
    from pipelines.release.build import STORAGE_VERSION, _create_table, _load_order, insert_rows, late_keys

    rows = {n: duckdb.sql(f"SELECT count(*) FROM read_parquet('{parquet / (n + '.parquet')}')").fetchall()[0][0] for n in pkg.tables}
    late = late_keys(pkg)
    results = {}
    with tempfile.TemporaryDirectory(prefix="model-atlas-floor-") as tmp:
        con = duckdb.connect()
        con.execute(f"ATTACH '{Path(tmp) / 'floor.duckdb'}' AS rel (STORAGE_VERSION '{STORAGE_VERSION}')")
        order = _load_order(pkg, rows)
        for name in order:
            _create_table(con, pkg, name, late[name], keys=keys)
        for name in order:
            path = parquet / f"{name}.parquet"
            wall, cpu = time.perf_counter(), time.process_time()
            if keys:
                insert_rows(con, pkg, name, path, late[name])
            else:
                con.execute(f"INSERT INTO rel.{q(name)} SELECT * FROM read_parquet('{path}')")
            con.execute("CHECKPOINT rel")
            results[name] = (rows[name], time.perf_counter() - wall, time.process_time() - cpu)
        con.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release", type=Path, help="a release directory written by model-atlas build")
    parser.add_argument("--root", type=Path, default=REPO, help="repository whose schemas built the release (default: this one)")
    args = parser.parse_args()

    from pipelines.package.descriptor import load_package

    parquet = args.release / "parquet"
    if not parquet.is_dir():
        print(f"{parquet}: not found; give a release directory (model-atlas build writes dist/model-atlas-<version>/)", file=sys.stderr)
        return 2
    pkg = load_package(args.root)
    plain = load(pkg, parquet, keys=False)
    keyed = load(pkg, parquet, keys=True)
    print(f"{'table':18s} {'rows':>11s}  {'no keys: wall':>13s} {'CPU':>7s}  {'with keys: wall':>15s} {'CPU':>7s}")
    for name, (rows, wall, cpu) in sorted(keyed.items(), key=lambda kv: -kv[1][2]):
        print(f"{name:18s} {rows:11,d}  {plain[name][1]:11.2f} s {plain[name][2]:5.2f} s  {wall:13.2f} s {cpu:5.2f} s")
    pw, pc = sum(v[1] for v in plain.values()), sum(v[2] for v in plain.values())
    kw, kc = sum(v[1] for v in keyed.values()), sum(v[2] for v in keyed.values())
    print(f"{'total':18s} {sum(v[0] for v in keyed.values()):11,d}  {pw:11.2f} s {pc:5.2f} s  {kw:13.2f} s {kc:5.2f} s")
    print(f"the keys cost {kc - pc:.1f} CPU seconds; the keyed load needs at least {kc / 2:.1f} s wall on 2 cores, however it is scheduled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
