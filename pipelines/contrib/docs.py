"""Generated documentation: the data dictionary (from schemas/) and the outputs in the SQL cookbook.

python -m pipelines.contrib.docs            regenerate docs/data-dictionary.md and the cookbook outputs
python -m pipelines.contrib.docs --check    exit 1 if either is out of date (the tests run this)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.package.descriptor import Package, load_package
from pipelines.release.schema import release_columns

COOKBOOK_AS_OF = "2026-11-23"
BLOCK = re.compile(r"```sql\n(?P<sql>.*?)```\n\n```text\n(?P<out>.*?)```", re.S)


def data_dictionary(pkg: Package) -> str:
    out = ["# Data dictionary", "", "Generated from `schemas/` by `python -m pipelines.contrib.docs`; do not edit by hand.", ""]
    conf = pkg.root / "data" / "confidence_levels.csv"
    for name, table in pkg.tables.items():
        out += [f"## {name}", "", table.description, "", f"File: `{table.path}`. Primary key: `{', '.join(table.primary_key)}`.", ""]
        for fk in table.foreign_keys:
            out.append(f"- `{', '.join(fk['fields'])}` references `{fk['reference'].get('resource') or name}.{', '.join(fk['reference']['fields'])}`")
        if table.foreign_keys:
            out.append("")
        out += ["| column | type | required | constraints | description |", "|---|---|---|---|---|"]
        for f in table.fields:
            cons = []
            for key in ("enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "unique"):
                if key in f.constraints:
                    v = f.constraints[key]
                    cons.append(f"{key}: {', '.join(map(str, v)) if isinstance(v, list) else v}")
            if f.type == "list":
                cons.append(f"list separated by `{f.delimiter}`")
            if f.fact:
                cons.append("needs a primary-source citation")
            cell = "; ".join(cons).replace("|", "\\|")
            out.append(f"| `{f.name}` | {f.type} | {'yes' if f.required else ''} | {cell} | {f.description.replace('|', '/')} |")
        derived = [c for c in release_columns(table) if c.derived]
        if derived:
            out += ["", "Computed in a release (not in the CSV):", ""]
            out += [f"- `{c.name}` ({c.type}): {c.description}" for c in derived]
        out.append("")
    if conf.is_file():
        import csv

        out += ["## Confidence levels", ""]
        with open(conf, newline="", encoding="utf-8") as fh:
            out += [f"- **{r['level']}**: {r['definition']}" for r in csv.DictReader(fh)]
        out.append("")
    return "\n".join(out)


def render_cookbook(text: str, release: Path) -> str:
    """The cookbook with every output block replaced by what its query prints now."""
    from pipelines.release.query import format_table, run_query

    def run(m):
        result = run_query(release / "model-atlas.duckdb", m["sql"], max_rows=None)
        return f"```sql\n{m['sql']}```\n\n```text\n{format_table(result.columns, result.rows)}```"

    return BLOCK.sub(run, text)


def build_for_docs(root: Path, out: Path) -> Path:
    """A release of the working tree at the cookbook's fixed as-of date."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "build", "--root", str(root), "--as-of", COOKBOOK_AS_OF, "--out", str(out), "--version", "0.0.0-docs"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"build failed:\n{proc.stderr}")
    return out / "model-atlas-0.0.0-docs"


def main(argv: list[str]) -> int:
    root = Path(".")
    check = "--check" in argv
    pkg = load_package(root)
    targets = {root / "docs" / "data-dictionary.md": data_dictionary(pkg)}
    with tempfile.TemporaryDirectory() as tmp:
        release = build_for_docs(root, Path(tmp))
        cookbook = root / "docs" / "queries.md"
        targets[cookbook] = render_cookbook(cookbook.read_text(encoding="utf-8"), release)
    stale = [p for p, text in targets.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if check:
        for p in stale:
            print(f"{p} is out of date; regenerate with: python -m pipelines.contrib.docs")
        return 1 if stale else 0
    for p in stale:
        p.write_text(targets[p], encoding="utf-8")
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
