"""Generated documentation: the data dictionary and CONTRIBUTING's allowed values (from schemas/), and the
outputs shown in the SQL cookbook (from a release of data/).

python -m pipelines.contrib.docs                     regenerate all three (the pre-commit hook runs this, like a formatter)
python -m pipelines.contrib.docs --check             exit 1 if any is out of date
python -m pipelines.contrib.docs --check --schemas   only what the schemas decide: the data dictionary and CONTRIBUTING.md
                                                     (the test suite runs this; a data change cannot make it fail)
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from pipelines.package.descriptor import Package, load_package
from pipelines.release.schema import release_columns

BLOCK = re.compile(r"```sql\n(?P<sql>.*?)```\n\n```text\n(?P<out>.*?)```", re.S)
ALLOWED_START = "<!-- allowed values: generated from schemas/ by python -m pipelines.contrib.docs; do not edit by hand -->"
ALLOWED_END = "<!-- end of allowed values -->"
ALLOWED_BLOCK = re.compile(re.escape(ALLOWED_START) + r".*?" + re.escape(ALLOWED_END), re.S)
COOKBOOK_DATE = re.compile(r"(as-of date )\d{4}-\d{2}-\d{2}")


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
                    cons.append(f"{key}: {', '.join(map(str, v)) if isinstance(v, list) else v}" + (f" ({f.hint})" if key == "pattern" and f.hint else ""))
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
        out += ["## Confidence levels", ""]
        with open(conf, newline="", encoding="utf-8") as fh:
            out += [f"- **{r['level']}**: {r['definition']}" for r in csv.DictReader(fh)]
        out.append("")
    return "\n".join(out)


def allowed_values(pkg: Package) -> str:
    """CONTRIBUTING.md's table of allowed values and forms, from the schemas' enums and x-hints."""
    out = [ALLOWED_START, "", "| column | allowed |", "|---|---|"]
    for name, table in pkg.tables.items():
        for f in table.fields:
            if f.enum:
                out.append(f"| `{name}.{f.name}` | {', '.join(f'`{v}`' for v in f.enum)} |")
            elif f.item_enum:
                out.append(f"| `{name}.{f.name}` | a list separated by `{f.delimiter}` of: {', '.join(f'`{v}`' for v in f.item_enum)} |")
            elif f.hint:
                out.append(f"| `{name}.{f.name}` | {f.hint} |")
    return "\n".join(out + ["", ALLOWED_END])


def render_contributing(text: str, pkg: Package) -> str:
    if not ALLOWED_BLOCK.search(text):
        raise SystemExit(f"CONTRIBUTING.md lacks the allowed-values markers ({ALLOWED_START} ... {ALLOWED_END})")
    return ALLOWED_BLOCK.sub(lambda _: allowed_values(pkg), text)


def newest_date(pkg: Package) -> date:
    """The latest value of any date column in data/: the cookbook's as-of date, so its outputs change with the
    data and never with the calendar."""
    newest = date(2000, 1, 1)
    for table in pkg.tables.values():
        columns = [f.name for f in table.fields if f.type == "date"]
        path = pkg.root / table.path
        if not columns or not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for c in columns:
                    try:
                        newest = max(newest, date.fromisoformat(row.get(c) or ""))
                    except ValueError:
                        pass
    return newest


def render_cookbook(text: str, release: Path, as_of: date) -> str:
    """The cookbook with every output block replaced by what its query prints now, and its as-of date."""
    from pipelines.release.query import format_table, run_query

    def run(m):
        result = run_query(release / "model-atlas.duckdb", m["sql"], max_rows=None)
        return f"```sql\n{m['sql']}```\n\n```text\n{format_table(result.columns, result.rows)}```"

    return COOKBOOK_DATE.sub(lambda m: m[1] + as_of.isoformat(), BLOCK.sub(run, text), count=1)


def build_for_docs(root: Path, out: Path, as_of: date) -> Path:
    """A release of the working tree at the cookbook's as-of date."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "build", "--root", str(root), "--as-of", as_of.isoformat(), "--out", str(out), "--version", "0.0.0-docs"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the cookbook outputs were not regenerated: data/ does not build (run model-atlas validate)\n{proc.stderr[-2000:]}")
    return out / "model-atlas-0.0.0-docs"


def generated(root: Path, schemas_only: bool = False) -> dict[Path, str]:
    """Every generated document, path -> what it should contain."""
    pkg = load_package(root)
    contributing = root / "CONTRIBUTING.md"
    targets = {
        root / "docs" / "data-dictionary.md": data_dictionary(pkg),
        contributing: render_contributing(contributing.read_text(encoding="utf-8"), pkg),
    }
    if not schemas_only:
        as_of = newest_date(pkg)
        with tempfile.TemporaryDirectory() as tmp:
            release = build_for_docs(root, Path(tmp), as_of)
            cookbook = root / "docs" / "queries.md"
            targets[cookbook] = render_cookbook(cookbook.read_text(encoding="utf-8"), release, as_of)
    return targets


def main(argv: list[str]) -> int:
    root = Path(".")
    check = "--check" in argv
    targets = generated(root, schemas_only="--schemas" in argv)
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
