"""Benchmark: the static site of a large synthetic release.

    python benchmarks/bench_site.py [--rows 100000] [--keep DIR]

Generates a clean package with bench.py's generator, builds its release, then times `model-atlas
site` on it and prints wall time, peak RSS, page count and total size. Record the printed figures in
docs/performance.md (targets: real data under 5 s; 100,000 models under 60 s and 2 GB).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import AS_OF, BIN, generate_clean_copy, measured  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="model rows (default 100,000)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="model-atlas-site-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pkg = work / "pkg"
    pkg.mkdir(exist_ok=True)
    try:
        generate_clean_copy(pkg, args.rows)
        secs, rss, proc = measured(
            [str(BIN / "model-atlas"), "build", "--root", str(pkg), "--as-of", AS_OF, "--out", str(work / "dist"), "--version", "0.0.0-bench"]
        )
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return 1
        print(f"model-atlas build    : {secs:7.2f} s  peak RSS {rss:7.0f} MB  ({args.rows:,} models)")
        site = work / "site"
        secs, rss, proc = measured([str(BIN / "model-atlas"), "site", "--release", str(work / "dist" / "model-atlas-0.0.0-bench"), "--out", str(site)])
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return 1
        pages = sum(1 for _ in site.rglob("*.html"))
        size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
        print(f"model-atlas site     : {secs:7.2f} s  peak RSS {rss:7.0f} MB  {pages:,} pages, {size / 1e6:.1f} MB (targets: < 60 s, < 2048 MB)")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
