"""NOTES.md for a release: counts, confidence, what changed since a previous release, stale rows."""

from __future__ import annotations

from pipelines.checks.coverage import coverage_markdown
from pipelines.package.sql import q
from pipelines.release.renditions import CSV_DIR, PARQUET_DIR


def release_notes(con, info, counts: dict[str, int], changes_md: str | None, previous_label: str | None, fact_coverage: list) -> str:
    lines = [f"# Model Atlas {info.version}", ""]
    lines += [
        f"- as-of date: {info.as_of.isoformat()}",
        f"- built: {info.built_line}",
        f"- source commit: `{info.source_commit}`",
        "",
    ]
    if info.dirty:
        lines += ["**Built from a tree with uncommitted changes**: the source commit does not hold exactly this data.", ""]
    lines += release_files_section()
    lines += ["## Rows per table", "", "| table | rows |", "|---|---:|"]
    lines += [f"| {t} | {n} |" for t, n in counts.items()]
    lines += ["", "## Confidence", "", "| table | high | medium | low |", "|---|---:|---:|---:|"]
    for t in ("models", "classes"):
        got = dict(con.execute(f"SELECT confidence, count(*) FROM {q('release_' + t)} GROUP BY ALL").fetchall())
        lines.append(f"| {t} | {got.get('high', 0)} | {got.get('medium', 0)} | {got.get('low', 0)} |")
    lines += ["", "## Coverage of the facts", ""]
    lines += [
        "Per fact field: rows that state it, rows whose gap is documented (unpublished by the maker, not applicable, not yet verified), "
        "and rows that simply lack it. `model-atlas coverage` prints the same table for a working tree.",
        "",
    ]
    lines += [coverage_markdown(fact_coverage).rstrip()]
    lines += ["", "## Changes", ""]
    if changes_md is None:
        lines += ["No previous release was given (`--previous`), so no row-level changes are listed.", ""]
    else:
        lines += [changes_md.rstrip(), ""]
    stale = con.execute(
        "SELECT 'models', model_id, confidence, last_reviewed, review_status FROM release_models WHERE review_status <> 'ok' "
        "UNION ALL SELECT 'classes', class_id, confidence, last_reviewed, review_status FROM release_classes WHERE review_status <> 'ok' ORDER BY 4, 1, 2"
    ).fetchall()
    lines += ["## Rows due for review", ""]
    if not stale:
        lines += [f"None: every row was reviewed within its policy at {info.as_of.isoformat()}.", ""]
    else:
        lines += ["| table | row | confidence | last reviewed | status |", "|---|---|---|---|---|"]
        lines += [f"| {t} | `{r}` | {c} | {d} | {s} |" for t, r, c, d, s in stale]
        lines.append("")
    if previous_label:
        lines += [f"Compared with: {previous_label}.", ""]
    return "\n".join(lines)


def release_files_section() -> list[str]:
    """What each file of a release is for, so a reader of the notes knows which one to open."""
    return [
        "## Files",
        "",
        "- `model-atlas.duckdb`: every table with its keys, column comments and views (DuckDB 1.x and 2.x).",
        f"- `{PARQUET_DIR}/<table>.parquet`: each table, typed, for DuckDB, pandas, polars, Spark and the Hugging Face card (`README.md`).",
        f"- `{CSV_DIR}/<table>.csv`: the same rows as CSV (lists joined by `|`, an empty cell for a missing value), described by "
        "`datapackage.json`, a Data Package that `frictionless validate datapackage.json` accepts.",
        "- `SHA256SUMS`: check a download with `sha256sum -c SHA256SUMS` or `model-atlas verify DIR`.",
        "",
    ]
