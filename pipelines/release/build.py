"""build and verify: compile the validated tables into a release directory.

build: validate -> derive release tables -> write Parquet, DuckDB, datapackage.json, NOTES.md,
SHA256SUMS into a temporary directory -> move it into place in one rename. Any error leaves
earlier releases and data/ untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pipelines.checks.coverage import coverage
from pipelines.package.clock import source_date_epoch, utc_today
from pipelines.package.descriptor import Package
from pipelines.package.sql import lit, q
from pipelines.release.changes import diff_markdown
from pipelines.release.notes import release_notes
from pipelines.release.renditions import (
    CSV_DIR,
    PARQUET_DIR,
    PARQUET_MEDIATYPE,
    csv_header,
    csv_layout_problem,
    csv_parquet_differences,
    csv_path,
    parquet_path,
    write_csv_renditions,
)
from pipelines.release.schema import arrow_schema, create_release_views, primary_key_ddl, release_columns, release_table_schema, table_ddl

RELEASE_PREFIX = "model-atlas-"
# a release version: MAJOR.MINOR.PATCH with an optional pre-release tag (1.2.0, 1.2.0-rc.1); nothing that can
# leave the output directory or break a line of NOTES.md
VERSION_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.]+)?")
VERSION_MAX = 64
DUCKDB_FILE = "model-atlas.duckdb"
STORAGE_VERSION = "v1.0.0"  # the DuckDB file format every DuckDB 1.x and 2.x opens


@dataclass
class BuildInfo:
    version: str
    as_of: date
    source_commit: str  # the commit, "<commit>-dirty" with uncommitted changes to the inputs, or "unknown" without git
    build_time: datetime
    build_time_from: str = "SOURCE_DATE_EPOCH"  # or "commit" (the commit time of a clean tree) or "clock" (the time of the build)
    dirty: bool = False
    fingerprint: str = ""  # source_fingerprint of the inputs

    @property
    def built_line(self) -> str:
        """How NOTES.md states the build time: what it is and where it came from."""
        when = self.build_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        why = {
            "SOURCE_DATE_EPOCH": "from SOURCE_DATE_EPOCH",
            "commit": "the time of the source commit",
            "clock": "the time of the build: the tree had uncommitted changes" if self.dirty else "the time of the build: no git commit to take it from",
        }[self.build_time_from]
        return f"{when} ({why})"


# what a release is built from: a change to any of these makes the tree "dirty"
RELEASE_INPUTS = ("datapackage.json", "data", "schemas", "pipelines", "pyproject.toml")


def git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def own_git_checkout(root: Path) -> bool:
    """Whether root is the top of a git checkout (not a source archive unpacked inside some other repository)."""
    top = git(root, "rev-parse", "--show-toplevel")
    return bool(top) and Path(top).resolve() == root.resolve() and git(root, "rev-parse", "--verify", "HEAD") is not None


def build_info(pkg: Package, version: str | None, as_of: date | None) -> BuildInfo:
    """Version, as-of date (given, else today in UTC), source commit, and the build time.

    Build time: SOURCE_DATE_EPOCH when set; else the commit time of a clean checkout (so two builds of
    one commit are byte-identical); else the clock, for a tree with uncommitted changes or without git,
    whose release is then marked as such."""
    commit, dirty, commit_time = "unknown", False, None
    if own_git_checkout(pkg.root):
        commit = git(pkg.root, "rev-parse", "HEAD") or "unknown"
        dirty = bool(git(pkg.root, "status", "--porcelain", "--", *RELEASE_INPUTS))
        epoch = git(pkg.root, "log", "-1", "--format=%ct")
        commit_time = datetime.fromtimestamp(int(epoch), UTC) if epoch and epoch.isdigit() else None
        if dirty:
            commit += "-dirty"
    pinned = source_date_epoch()
    if pinned:
        built, source = pinned, "SOURCE_DATE_EPOCH"
    elif commit_time and not dirty:
        built, source = commit_time, "commit"
    else:
        built, source = datetime.now(UTC).replace(microsecond=0), "clock"
    return BuildInfo(version or pkg.descriptor.get("version", "0.0.0"), as_of or utc_today(), commit, built, source, dirty, source_fingerprint(pkg))


VIEWS = {
    "model_overview": (
        "One row per model, family or product: its facts, classes (hand-written and derived), confidence and last review.",
        """SELECT m.model_id, m.name, m.kind, m.organization, m.release_date, m.release_date_precision, m.params_total, m.params_active,
       m.context_length, m.max_output_tokens, m.knowledge_cutoff, m.license, m.open_weights, m.input_modalities, m.output_modalities,
       m.reasoning, m.tool_calling, m.status, m.size_band, list(mc.class_id ORDER BY mc.class_id) FILTER (WHERE mc.class_id IS NOT NULL) AS classes,
       m.confidence, m.last_reviewed, m.review_status
FROM models m LEFT JOIN model_classes mc USING (model_id)
GROUP BY ALL ORDER BY m.model_id""",
    ),
    "model_lineage": (
        "Every ancestor of every model through the lineage edges (fine-tuned, distilled, continued pretraining, quantized, merged, extends, successor), "
        "with the path; read it forwards for ancestors and backwards (WHERE ancestor_id = ...) for descendants.",
        """WITH RECURSIVE up(model_id, ancestor_id, depth, relations, path) AS (
  SELECT model_id, target_id, 1, [relation], [model_id, target_id] FROM model_relations WHERE relation <> 'uses-model'
  UNION ALL
  SELECT up.model_id, r.target_id, up.depth + 1, list_append(up.relations, r.relation), list_append(up.path, r.target_id)
  FROM up JOIN model_relations r ON r.model_id = up.ancestor_id
  WHERE r.relation <> 'uses-model' AND NOT list_contains(up.path, r.target_id)
)
SELECT model_id, ancestor_id, depth, relations, path FROM up ORDER BY model_id, depth, ancestor_id""",
    ),
    "fact_timeline": (
        "Each recorded value of a fact that changed, with the date it took effect and the date the next value replaced it (valid_to is NULL for the "
        "current value); the value at date X is the row WHERE valid_from <= X AND (valid_to IS NULL OR X < valid_to).",
        """SELECT model_id, field, value, effective_on AS valid_from, effective_on_precision AS valid_from_precision,
       lead(effective_on) OVER (PARTITION BY model_id, field ORDER BY effective_on) AS valid_to, source_id, locator
FROM fact_history ORDER BY model_id, field, valid_from""",
    ),
    "class_tree": (
        "Every class with its path from the root of its facet, via a recursive query over parent_class_id.",
        """WITH RECURSIVE tree(class_id, facet, depth, path) AS (
  SELECT class_id, facet, 0, [class_id] FROM classes WHERE parent_class_id IS NULL
  UNION ALL
  SELECT c.class_id, c.facet, t.depth + 1, list_append(t.path, c.class_id) FROM classes c JOIN tree t ON c.parent_class_id = t.class_id
)
SELECT class_id, facet, depth, path, array_to_string(path, ' > ') AS path_text FROM tree ORDER BY path_text""",
    ),
    "class_members": (
        "Each class with the models in it, including those of its subclasses.",
        """WITH RECURSIVE below(class_id, member_class_id) AS (
  SELECT class_id, class_id FROM classes
  UNION ALL
  SELECT b.class_id, c.class_id FROM below b JOIN classes c ON c.parent_class_id = b.member_class_id
)
SELECT b.class_id, mc.model_id, mc.class_id AS via_class_id FROM below b JOIN model_classes mc ON mc.class_id = b.member_class_id ORDER BY ALL""",
    ),
    "stale_rows": (
        "Rows whose latest review is past the warn-after (due) or error-after (stale) age at the release's as-of date.",
        """SELECT 'models' AS table_name, model_id AS row_id, name, confidence, last_reviewed, review_status FROM models WHERE review_status <> 'ok'
UNION ALL
SELECT 'classes', class_id, name, confidence, last_reviewed, review_status FROM classes WHERE review_status <> 'ok'
ORDER BY last_reviewed, table_name, row_id""",
    ),
    "fact_citations": (
        "The sources behind each cited fact, with their kind and tier.",
        """SELECT c.table_name, c.row_id, c.field, c.source_id, s.kind AS source_kind, s.tier, s.url, s.title, c.locator
FROM citations c JOIN sources s USING (source_id) ORDER BY c.table_name, c.row_id, c.field, s.tier, c.source_id""",
    ),
    "seed_corrections": (
        "Where a seed note was wrong: the corrected row and field, what the seed claimed, and the review note.",
        """SELECT r.table_name, r.row_id, r.field, r.seed_value AS seed_claimed, r.seed_source_id, r.reviewed_on, r.note
FROM reviews r WHERE r.verdict = 'corrected' AND r.seed_source_id IS NOT NULL ORDER BY r.table_name, r.row_id, r.field""",
    ),
    "architecture_comparison": (
        "Dense, mixture-of-experts and state space models side by side: counts and published sizes from the data.",
        """SELECT mc.class_id AS architecture, count(*) AS models, count(m.params_total) AS with_published_size,
       min(m.params_total) AS smallest_params, max(m.params_total) AS largest_params,
       median(CAST(m.params_active AS DOUBLE) / m.params_total) FILTER (WHERE m.params_active IS NOT NULL) AS median_active_share,
       max(m.context_length) AS longest_context, list(m.model_id ORDER BY m.model_id) AS model_ids
FROM model_classes mc JOIN models m USING (model_id)
WHERE mc.class_id IN ('dense-model', 'mixture-of-experts', 'state-space-model', 'transformer-ssm-hybrid')
GROUP BY mc.class_id ORDER BY mc.class_id""",
    ),
    "ambiguous_abbreviations": (
        "Abbreviations that name more than one class (for example LCM), with the classes they can mean.",
        """SELECT abbreviation, list(class_id ORDER BY class_id) AS class_ids, list(name ORDER BY class_id) AS names
FROM classes WHERE abbreviation IS NOT NULL GROUP BY abbreviation HAVING count(*) > 1 ORDER BY abbreviation""",
    ),
}


def _load_order(pkg: Package, rows: dict[str, int]) -> list[str]:
    """Tables in an order where every foreign key's target comes first, and otherwise larger tables come first."""
    order: list[str] = []
    pending = dict(pkg.tables)

    def weight(name: str) -> int:  # a table's rows plus those of every table waiting on it
        return rows.get(name, 0) + sum(weight(n) for n in pkg.tables if name in pkg.table(n).references)

    while pending:
        ready = [n for n in pending if pkg.table(n).references <= set(order)] or list(pending)
        pick = max(ready, key=lambda n: (weight(n), n))
        order.append(pick)
        del pending[pick]
    return order


def _create_table(con, pkg: Package, name: str, late_key: bool, keys: bool = True) -> None:
    """CREATE TABLE in the release database, with its comments (all tables are created before any is loaded:
    DuckDB records a foreign key on both tables, so creating two tables that reference one table at once conflicts).
    keys=False leaves out every constraint (benchmarks/build_floor.py measures what they cost)."""
    table = pkg.table(name)
    ddl = table_ddl(table, pkg, with_foreign_keys=keys, with_primary_key=keys and not late_key)
    con.execute(ddl.replace(f"CREATE TABLE {q(name)}", f"CREATE TABLE rel.{q(name)}", 1))
    con.execute(f"COMMENT ON TABLE rel.{q(name)} IS {lit(table.description or table.title)}")
    for c in release_columns(table):
        con.execute(f"COMMENT ON COLUMN rel.{q(name)}.{q(c.name)} IS {lit(c.description)}")


def _load_table(con, pkg: Package, name: str, holder: list, parquet: Path, wait_for: list, late_key: bool, slots, ddl_lock) -> None:
    """One table: its Parquet file, then (once the tables it references are loaded) its rows in the DuckDB file,
    read back from that Parquet file so the two artifacts cannot differ."""
    import pyarrow.parquet as pq

    path = parquet / f"{name}.parquet"
    try:
        pq.write_table(holder.pop(), path, compression="zstd", write_statistics=True, use_dictionary=True)
    finally:
        slots.release()  # the Arrow copy is gone (or the write failed): the next table may be taken
    for future in wait_for:
        future.result()
    cur = con.cursor()  # a connection of its own: independent tables load side by side
    try:
        insert_rows(cur, pkg, name, path, late_key, ddl_lock)
    finally:
        cur.close()


def insert_rows(cur, pkg: Package, name: str, path: Path, late_key: bool, ddl_lock=None) -> None:
    """Insert a table's rows from its Parquet file into the attached release database (rel), where the
    table exists with its keys: parents before children when the table references itself, and the
    primary key added after the bulk load when late_key."""
    table = pkg.table(name)
    self_fk = [fk for fk in table.foreign_keys if table.fk_target(fk) == name]
    if self_fk:
        # a self-referencing key needs parents inserted before children: one level of the tree at a time
        child, parent = self_fk[0]["fields"][0], self_fk[0]["reference"]["fields"][0]
        cur.execute(f"CREATE TEMP TABLE pending AS SELECT * FROM read_parquet({lit(str(path))})")
        while cur.execute("SELECT count(*) FROM pending").fetchall()[0][0]:
            moved = cur.execute(
                f"INSERT INTO rel.{q(name)} SELECT * FROM pending p WHERE p.{q(child)} IS NULL OR p.{q(child)} IN (SELECT {q(parent)} FROM rel.{q(name)})"
            ).fetchall()[0][0]
            cur.execute(f"DELETE FROM pending WHERE {q(table.primary_key[0])} IN (SELECT {q(table.primary_key[0])} FROM rel.{q(name)})")
            if not moved:
                raise RuntimeError(f"{name}: parent references do not resolve")
        cur.execute("DROP TABLE pending")
    else:
        cur.execute(f"INSERT INTO rel.{q(name)} SELECT * FROM read_parquet({lit(str(path))})")
    if late_key:
        with ddl_lock or contextlib.nullcontext():  # catalog changes one at a time
            cur.execute(f"ALTER TABLE rel.{q(name)} ADD {primary_key_ddl(table)}")


def late_keys(pkg: Package) -> dict[str, bool]:
    """Per table: add its primary key after the bulk load? Yes when no foreign key points at the table
    (DuckDB needs the key in place before a referencing table is created); that is about twice as fast
    as indexing row by row."""
    referenced = {t.fk_target(fk) for t in pkg.tables.values() for fk in t.foreign_keys}
    return {name: name not in referenced and bool(t.primary_key) for name, t in pkg.tables.items()}


def write_tables(con, pkg: Package, out: Path, info: BuildInfo, diffs: list, fact_coverage: list) -> dict[str, int]:
    """Parquet files (zstd, sorted by key, typed and described from the schema) and a DuckDB file in the
    v1.0.0 storage format (opens in DuckDB 1.x and 2.x) with keys, comments and views.

    Tables are taken from the release views on this connection (one Arrow copy in memory at a time);
    each is then written by a worker thread that waits only for the tables its foreign keys point at,
    so independent tables load side by side (DuckDB checks foreign keys and builds key indexes mostly
    on one core).
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    parquet = out / "parquet"
    parquet.mkdir(parents=True, exist_ok=True)
    con.execute(f"ATTACH {lit(str(out / DUCKDB_FILE))} AS rel (STORAGE_VERSION {lit(STORAGE_VERSION)})")
    late = late_keys(pkg)
    counts: dict[str, int] = {}
    loaded: dict = {}
    slots, ddl_lock = threading.Semaphore(1), threading.Lock()
    try:
        for name in _load_order(pkg, {}):
            _create_table(con, pkg, name, late[name])
        with ThreadPoolExecutor(max_workers=len(pkg.tables)) as pool:
            # the biggest tables first (each after the tables it references): the longest chain starts soonest
            for name in _load_order(pkg, {n: con.execute(f"SELECT count(*) FROM {q('typed_' + n)}").fetchall()[0][0] for n in pkg.tables}):
                table = pkg.table(name)
                slots.acquire()
                data = con.sql(f"SELECT * FROM {q('release_' + name)}").to_arrow_table().cast(arrow_schema(table))
                counts[name] = data.num_rows
                waits = [loaded[t] for t in table.references if t in loaded]
                loaded[name] = pool.submit(_load_table, con, pkg, name, [data], parquet, waits, late[name], slots, ddl_lock)
                del data
            for future in loaded.values():
                future.result()
        write_database_extras(con, info, counts, diffs, fact_coverage)
    finally:
        con.execute("USE memory")
        con.execute("DETACH DATABASE IF EXISTS rel")
    return counts


def write_database_extras(con, info: BuildInfo, counts: dict[str, int], diffs: list, fact_coverage: list | None = None) -> None:
    """Views, release_info, release_changes and fact_coverage in the attached release database."""
    import duckdb
    import pyarrow

    con.execute("USE rel")
    for view, (doc, sql) in VIEWS.items():
        con.execute(f"CREATE VIEW {q(view)} AS {sql}")
        con.execute(f"COMMENT ON VIEW {q(view)} IS {lit(doc)}")
    con.execute("CREATE TABLE release_info (key VARCHAR PRIMARY KEY, value VARCHAR)")
    rows = {
        "version": info.version,
        "source_commit": info.source_commit,
        "build_time": info.build_time.isoformat(),
        "build_time_from": info.build_time_from,
        "dirty": "true" if info.dirty else "false",
        "as_of": info.as_of.isoformat(),
        "row_counts": json.dumps(counts, sort_keys=True),
        "duckdb_version": duckdb.__version__,
        "pyarrow_version": pyarrow.__version__,
        "model_atlas_version": __import__("pipelines").__version__,
        "storage_version": STORAGE_VERSION,
    }
    if info.fingerprint:
        rows["source_sha256"] = info.fingerprint
    con.executemany("INSERT INTO release_info VALUES (?, ?)", sorted(rows.items()))
    con.execute("CREATE TABLE release_changes (table_name VARCHAR, row_id VARCHAR, change VARCHAR, field VARCHAR, old_value VARCHAR, new_value VARCHAR)")
    changes = [(d.table, k, "added", None, None, None) for d in diffs for k in d.added]
    changes += [(d.table, k, "removed", None, None, None) for d in diffs for k in d.removed]
    changes += [(d.table, k, "changed", c, a, b) for d in diffs for k, c, a, b in d.changed]
    changes += [(d.table, None, "column-added", c, None, None) for d in diffs for c in d.columns_added]
    changes += [(d.table, None, "column-removed", c, None, None) for d in diffs for c in d.columns_removed]
    if changes:
        con.executemany("INSERT INTO release_changes VALUES (?, ?, ?, ?, ?, ?)", sorted(changes, key=lambda r: tuple(x or "" for x in r)))
    con.execute(
        "COMMENT ON TABLE release_changes IS 'Rows added, removed and changed (field, old -> new) since the previous release; empty when none was given.'"
    )
    con.execute(
        "CREATE TABLE fact_coverage (table_name VARCHAR, field VARCHAR, models BIGINT, stated BIGINT, primary_cited BIGINT, "
        "unpublished BIGINT, not_applicable BIGINT, unverified BIGINT, missing BIGINT, PRIMARY KEY (table_name, field))"
    )
    if fact_coverage:
        con.executemany(
            "INSERT INTO fact_coverage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.table, c.field, c.rows, c.stated, c.primary, c.unpublished, c.not_applicable, c.unverified, c.missing) for c in fact_coverage],
        )
    con.execute(
        "COMMENT ON TABLE fact_coverage IS 'Per fact field: models that state it (and cite a primary source), whose gap is documented "
        "(unpublished, not applicable, unverified), and that simply lack it; the same counts as model-atlas coverage.'"
    )
    con.execute(
        "COMMENT ON TABLE release_info IS 'How and from what this release was built: version, source commit, build time, as-of date, row counts, tool versions.'"
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_descriptor(pkg: Package, out: Path, info: BuildInfo) -> None:
    """The release datapackage.json: one resource per table, its CSV rendition with bytes and sha256 and a Table
    Schema that frictionless validates, its Parquet file beside it under x-parquet; licence, version."""
    d = pkg.descriptor
    sources = [{"title": "Model Atlas curated CSV tables", "path": "https://github.com/model-atlas/model-atlas"}]
    resources = []
    for name, table in pkg.tables.items():
        rendition, parquet = out / csv_path(name), out / parquet_path(name)
        resources.append(
            {
                "name": name,
                "type": "table",
                "path": csv_path(name),
                "scheme": "file",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "title": table.title,
                "description": table.description,
                "bytes": rendition.stat().st_size,
                "hash": "sha256:" + sha256(rendition),
                "schema": release_table_schema(table),
                "x-parquet": {
                    "path": parquet_path(name),
                    "format": "parquet",
                    "mediatype": PARQUET_MEDIATYPE,
                    "bytes": parquet.stat().st_size,
                    "hash": "sha256:" + sha256(parquet),
                },
            }
        )
    release = {
        "$schema": "https://datapackage.org/profiles/2.0/datapackage.json",
        "name": d.get("name", "model-atlas"),
        "title": d.get("title", ""),
        "description": d.get("description", ""),
        "version": info.version,
        "created": info.build_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "licenses": d.get("licenses", []),
        "sources": sources,
        "x-model-atlas": {
            "as_of": info.as_of.isoformat(),
            "source_commit": info.source_commit,
            "dirty": info.dirty,
            "source_sha256": info.fingerprint,
            "policy": d.get("x-model-atlas", {}),
        },
        "resources": resources,
    }
    (out / "datapackage.json").write_text(json.dumps(release, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def dataset_card(pkg: Package, info: BuildInfo, counts: dict[str, int]) -> str:
    """A Hugging Face dataset card: YAML front matter mapping each table to its Parquet file, then what the release is.

    With it the release directory can be pushed to the Hub as it is, and `datasets.load_dataset(DIR, "models")` reads a table.
    """
    d = pkg.descriptor
    licence = (d.get("licenses") or [{}])[0].get("name", "other").lower()
    lines = ["---", f"license: {licence}", f"pretty_name: {json.dumps(d.get('title', 'Model Atlas'))}", "configs:"]
    for name in pkg.tables:
        lines += [f"  - config_name: {name}", "    data_files:", "      - split: train", f"        path: {parquet_path(name)}"]
        if name == "models":
            lines.append("    default: true")
    lines += ["tags:", "  - ai-models", "  - catalog", "  - provenance", "---", ""]
    lines += [f"# {d.get('title', 'Model Atlas')} {info.version}", "", d.get("description", ""), ""]
    lines += [f"Facts as of {info.as_of.isoformat()}, built from commit `{info.source_commit}`.", ""]
    lines += ["| table | rows | what one row is |", "|---|---:|---|"]
    lines += [f"| `{name}` | {counts.get(name, 0)} | {t.description} |" for name, t in pkg.tables.items()]
    lines += [
        "",
        "Every model and class row carries `confidence` and `last_reviewed`, computed from the review log; the confidence levels "
        "are defined in the `confidence_levels` table. `model-atlas.duckdb` holds the same tables with their keys and views; "
        "`csv/<table>.csv` holds each table as CSV (lists joined by `|`), which `datapackage.json` describes as a Data Package that "
        "`frictionless validate` accepts; it lists every file with its size and sha256, and `NOTES.md` says what changed.",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@misc{model_atlas,",
        "  title = {Model Atlas: a curated dataset of AI model classes and models},",
        "  author = {{Model Atlas curators}},",
        f"  year = {{{info.build_time.year}}},",
        f"  version = {{{info.version}}},",
        "  note = {Every fact cited to its source, with a confidence level and last review date}",
        "}",
        "```",
        "",
    ]
    return "\n".join(lines)


def write_checksums(out: Path) -> None:
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{sha256(p)}  {p.relative_to(out).as_posix()}" for p in files]
    (out / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")


_IDENT = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SUM_LINE = re.compile(r"([0-9a-f]{64})  ([A-Za-z0-9_][A-Za-z0-9_./-]{0,254})")
BOOKKEEPING_TABLES = {"release_info", "release_changes", "fact_coverage"}


def _release_files(release: Path) -> tuple[list[str], list[str]]:
    """(relative paths of regular files, problems): symlinks and anything that is not a plain file or directory are refused, never followed."""
    files, problems = [], []
    for dirpath, dirnames, filenames in os.walk(release, followlinks=False):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = base / name
            rel = p.relative_to(release).as_posix()
            if p.is_symlink():
                problems.append(f"{rel}: a symlink; a release holds only plain files")
            elif name in filenames:
                if p.is_file():
                    files.append(rel)
                else:
                    problems.append(f"{rel}: not a plain file")
    return sorted(files), problems


# the files of a release besides SHA256SUMS and each table's csv/<table>.csv and parquet/<table>.parquet
RELEASE_FILES = ("datapackage.json", DUCKDB_FILE, "NOTES.md", "README.md")
COLUMN_TYPES = {"string", "integer", "number", "boolean", "date", "list"}


def verify_release(release: Path) -> list[str]:
    """Problems with a release directory; empty = verified.

    Complete: SHA256SUMS, the files of RELEASE_FILES, and for every table of the release's schema (its
    descriptor's resources, which must be the DuckDB file's tables) a CSV rendition and a Parquet file
    holding the same rows, as many as release_info counts. Untampered: every file matches SHA256SUMS and
    the descriptor's bytes and hashes. Contained: no symlink, no path outside the directory, nothing
    unlisted, no file a release does not have.
    """
    if release.is_symlink():
        return [f"{release.name}: the release directory is a symlink"]
    files, problems = _release_files(release)
    if "SHA256SUMS" not in files:
        return problems + ["SHA256SUMS: missing; cannot verify"]
    listed = set()
    try:
        sums = (release / "SHA256SUMS").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return problems + [f"SHA256SUMS: cannot read ({exc})"]
    for n, line in enumerate(sums.splitlines(), 1):
        m = _SUM_LINE.fullmatch(line)
        if not m or ".." in m.group(2).split("/") or m.group(2) in listed:
            problems.append(f"SHA256SUMS:{n}: malformed line (64 hex digits, two spaces, a relative path inside the release, each once)")
            continue
        digest, rel = m.groups()
        listed.add(rel)
        if rel not in files:
            problems.append(f"{rel}: listed in SHA256SUMS but missing")
        elif sha256(release / rel) != digest:
            problems.append(f"{rel}: sha256 does not match SHA256SUMS")
    for rel in files:
        if rel != "SHA256SUMS" and rel not in listed:
            problems.append(f"{rel}: present but not listed in SHA256SUMS")
    for required in RELEASE_FILES:
        if required not in files:
            problems.append(f"{required}: missing; a release has {', '.join(RELEASE_FILES)}, SHA256SUMS, {CSV_DIR}/ and {PARQUET_DIR}/")
    if problems:
        return problems
    return _verify_contents(release, files)


def _table_fields(res: dict) -> list[tuple[str, str]] | None:
    """A resource's columns as (name, type), or None unless every one is a plain identifier with a known type."""
    fields = res.get("schema", {}).get("fields") if isinstance(res.get("schema"), dict) else None
    if not isinstance(fields, list) or not fields:
        return None
    out = []
    for f in fields:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not _IDENT.fullmatch(f["name"]) or f.get("type") not in COLUMN_TYPES:
            return None
        out.append((f["name"], f["type"]))
    return out if len({n for n, _ in out}) == len(out) else None


def _verify_file(release: Path, files: list[str], pointer: str, meta, expected: str, name: str) -> list[str]:
    """One described file of a resource (its CSV rendition or its x-parquet file): at the one path it may have,
    present, with the bytes and sha256 the descriptor gives. A path is compared as text and never opened otherwise."""
    if not isinstance(meta, dict):
        return [f"datapackage.json: {pointer} is missing or not an object; every resource describes its CSV rendition and, under x-parquet, its Parquet file"]
    if meta.get("path") != expected:
        return [f"datapackage.json: {pointer}/path must be {expected!r}, not {str(meta.get('path'))[:80]!r}; a release's files lie at fixed places inside it"]
    if expected not in files:
        return [f"{expected}: missing (resource {name})"]
    path, problems = release / expected, []
    if path.stat().st_size != meta.get("bytes"):
        problems.append(f"{expected}: size differs from datapackage.json {pointer}/bytes")
    if "sha256:" + sha256(path) != meta.get("hash"):
        problems.append(f"{expected}: sha256 differs from datapackage.json {pointer}/hash")
    return problems


def _verify_contents(release: Path, files: list[str]) -> list[str]:
    """The descriptor against the files and the DuckDB file (called once every checksum holds)."""
    from pipelines.package.profile import read_json

    problems = []
    desc, bad = read_json(release / "datapackage.json", "datapackage.json")  # strict: size, depth, duplicate keys
    if bad:
        return [f"datapackage.json: {bad[0].message}"]
    try:
        resources = desc["resources"]
        if not isinstance(resources, list) or not resources:
            return ["datapackage.json: lists no resources; a release has at least one table"]
        tables: dict[str, list[tuple[str, str]]] = {}
        described = set(RELEASE_FILES)
        for i, res in enumerate(resources):
            name = res["name"]
            if not isinstance(name, str) or not _IDENT.fullmatch(name) or name in tables:
                problems.append(f"datapackage.json: /resources/{i}/name is not a distinct table name")
                continue
            fields = _table_fields(res)
            if fields is None:
                problems.append(f"datapackage.json: /resources/{i}/schema/fields must list each column once, with a plain name and a Table Schema type")
                continue
            tables[name] = fields
            described |= {csv_path(name), parquet_path(name)}
            problems += _verify_file(release, files, f"/resources/{i}", res, csv_path(name), name)
            problems += _verify_file(release, files, f"/resources/{i}/x-parquet", res.get("x-parquet"), parquet_path(name), name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"datapackage.json: cannot read ({type(exc).__name__}: {str(exc)[:120]})"]
    problems += [
        f"{f}: not a file of this release (datapackage.json describes no such file); remove it" for f in files if f != "SHA256SUMS" and f not in described
    ]
    if problems:
        return problems
    return _verify_database(release, tables)


def _verify_database(release: Path, tables: dict[str, list[tuple[str, str]]]) -> list[str]:
    """The DuckDB file holds exactly the descriptor's tables, with the row counts release_info records, and so do
    the Parquet files; each CSV rendition has the schema's header and the same rows as its Parquet file."""
    import duckdb

    from pipelines.package.duck import open_duckdb

    problems, names = [], list(tables)
    try:
        con = open_duckdb(release / DUCKDB_FILE, read_only=True, directories=[release / PARQUET_DIR, release / CSV_DIR])
    except duckdb.Error as exc:
        return [f"{DUCKDB_FILE}: cannot be opened ({str(exc).splitlines()[0][:120]})"]
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
        if not BOOKKEEPING_TABLES <= present:
            return [f"{DUCKDB_FILE}: lacks {', '.join(sorted(BOOKKEEPING_TABLES - present))}"]
        data_tables = present - BOOKKEEPING_TABLES
        if data_tables != set(names):
            missing, extra = sorted(data_tables - set(names)), sorted(set(names) - data_tables)
            return [f"{DUCKDB_FILE}: its tables differ from datapackage.json's resources (not in the descriptor: {missing}; not in the database: {extra})"]
        counts = json.loads(dict(con.execute("SELECT key, value FROM release_info").fetchall()).get("row_counts", "null"))
        if not isinstance(counts, dict) or set(counts) != set(names):
            return [f"{DUCKDB_FILE}: release_info.row_counts does not list every table"]
        for name, fields in tables.items():
            rendition, parquet = (release / csv_path(name)).resolve(), (release / parquet_path(name)).resolve()
            in_db = con.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0]
            layout = csv_layout_problem(rendition)
            if layout:
                problems.append(f"{csv_path(name)}: {layout}; a release's CSV files hold one row a line")
                continue
            if csv_header(rendition) != [n for n, _ in fields]:
                problems.append(f"{csv_path(name)}: its header is not the column names of datapackage.json's schema for {name}")
                continue
            try:
                in_csv, in_parquet, differ = csv_parquet_differences(con, fields, rendition, parquet)
            except duckdb.Error as exc:
                problems.append(f"{csv_path(name)}: cannot be compared with {parquet_path(name)} ({str(exc).splitlines()[0][:160]})")
                continue
            if in_csv != in_parquet or differ:
                problems.append(
                    f"{csv_path(name)}: {in_csv} rows, {differ} of them (with those of the Parquet file) not in {parquet_path(name)}, which has {in_parquet}"
                )
            if not in_db == in_parquet == counts[name]:
                problems.append(f"{name}: {in_db} rows in the DuckDB file, {in_parquet} in {parquet_path(name)}, {counts[name]} in release_info")
                continue
            # the DuckDB table holds the very rows of the Parquet file (the site and query read the database)
            source = f"read_parquet({lit(str(parquet))})"
            in_both = con.execute(
                f"SELECT (SELECT count(*) FROM (FROM {q(name)} EXCEPT ALL FROM {source})) + (SELECT count(*) FROM (FROM {source} EXCEPT ALL FROM {q(name)}))"
            ).fetchone()[0]
            if in_both:
                problems.append(f"{DUCKDB_FILE}: {in_both} row(s) of its table {name} and of {parquet_path(name)} differ")
        problems += _view_problems(con)
    except (duckdb.Error, ValueError, TypeError) as exc:
        problems.append(f"{DUCKDB_FILE}: cannot be read ({str(exc).splitlines()[0][:120]})")
    finally:
        con.close()
    return problems


def _view_problems(con) -> list[str]:
    """The release's views are exactly those this version of model-atlas writes, and each gives the
    rows its definition gives over the release's tables. (DuckDB stores a view's text normalised, and
    differently depending on how the file was written, so the text cannot be compared; the rows can.)"""
    db = con.execute("SELECT current_database()").fetchone()[0]
    got = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database()").fetchall()}
    if got != set(VIEWS):
        return [f"{DUCKDB_FILE}: its views differ from the release views (missing: {sorted(set(VIEWS) - got)}; unknown: {sorted(got - set(VIEWS))[:5]})"]
    problems = []
    for view, (_, sql) in VIEWS.items():  # temporary views with the same names: later views read these
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(view)} AS {sql}")
    for view in VIEWS:
        shipped, expected = f"{q(db)}.main.{q(view)}", f"temp.main.{q(view)}"
        columns = [con.execute(f"SELECT * FROM {v} LIMIT 0").description for v in (shipped, expected)]
        if [(c[0], str(c[1])) for c in columns[0]] != [(c[0], str(c[1])) for c in columns[1]]:
            problems.append(f"{DUCKDB_FILE}: the view {view} does not have the columns model-atlas defines it with")
            continue
        differ = con.execute(
            f"SELECT (SELECT count(*) FROM (FROM {shipped} EXCEPT ALL FROM {expected})) + (SELECT count(*) FROM (FROM {expected} EXCEPT ALL FROM {shipped}))"
        ).fetchone()[0]
        if differ:
            problems.append(f"{DUCKDB_FILE}: the view {view} does not give the rows model-atlas defines it to give ({differ} differ)")
    return problems


class ReleaseExists(Exception):
    pass


class OutputError(Exception):
    """--version or --out cannot be used (exit 2)."""


def check_version(version: str) -> str:
    if not isinstance(version, str) or len(version) > VERSION_MAX or not VERSION_RE.fullmatch(version):
        raise OutputError(f"{str(version)[:80]!r} is not a release version: write MAJOR.MINOR.PATCH with an optional -tag, for example 1.2.0 or 1.2.0-rc.1")
    return version


def check_out_dir(root: Path, out: Path) -> Path:
    """The output directory, refused when it is a file or lies inside data/ or schemas/ (or is the package itself)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a directory")
    try:
        resolved = out.resolve()
        protected = [(root / "data").resolve(), (root / "schemas").resolve(), (root / ".git").resolve()]
    except (OSError, RuntimeError) as exc:
        raise OutputError(f"--out {out} cannot be resolved ({exc})") from None
    for p in protected:
        if resolved == p or p in resolved.parents:
            raise OutputError(f"--out {out} lies inside {p.name}/, which holds the package's sources; choose another directory such as dist")
    return out


def staging_dir(out_dir: Path, version: str) -> Path:
    """Where a release is written before it is renamed into place (the build connection may write only there)."""
    return out_dir / f".{RELEASE_PREFIX}{version}.tmp-{os.getpid()}"


def source_fingerprint(pkg: Package) -> str:
    """sha256 over what a release is built from: the descriptor, every schema and data file it names, and
    the tool's version. Two builds with the same fingerprint hold the same data."""
    h = hashlib.sha256(f"model-atlas {__import__('pipelines').__version__}\n".encode())
    paths = ["datapackage.json"] + sorted({t.schema_path for t in pkg.tables.values()} | {t.path for t in pkg.tables.values()})
    for rel in paths:
        path = pkg.root / rel
        h.update(f"{rel}\n".encode())
        h.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() if path.is_file() else b"missing")
    return h.hexdigest()


@dataclass
class ExistingRelease:
    path: Path
    fingerprint: str | None  # None for a release built before fingerprints were recorded
    as_of: str | None
    source_commit: str | None


def existing_release(out_dir: Path, version: str) -> ExistingRelease | None:
    """The release already at out_dir for this version, with what it records about its inputs; None if there is none."""
    final = out_dir / f"{RELEASE_PREFIX}{version}"
    if not final.exists():
        return None
    try:
        meta = json.loads((final / "datapackage.json").read_text(encoding="utf-8")).get("x-model-atlas", {})
    except (OSError, ValueError, AttributeError):
        meta = {}
    return ExistingRelease(final, meta.get("source_sha256"), meta.get("as_of"), meta.get("source_commit"))


def same_release(existing: ExistingRelease, pkg: Package, as_of: date | None) -> tuple[bool, str]:
    """Whether rebuilding would give the release that exists (same inputs, and the same as-of date when one is
    given), and a sentence saying why not."""
    if existing.fingerprint is None:
        return False, f"{existing.path} already exists and records no source fingerprint, so it cannot be compared"
    if existing.fingerprint != source_fingerprint(pkg):
        return False, (
            f"{existing.path} already exists with other content (built from commit {existing.source_commit}, as of {existing.as_of}); "
            "releases are immutable: set a new version in datapackage.json or pass --version"
        )
    if as_of is not None and existing.as_of != as_of.isoformat():
        return False, (
            f"{existing.path} already exists with the same data but as of {existing.as_of}, not {as_of.isoformat()}; "
            "releases are immutable: pass --as-of " + str(existing.as_of) + " or choose a new --version"
        )
    problems = verify_release(existing.path)
    if problems:
        return False, f"{existing.path} already exists but does not verify ({problems[0]}); remove it and build again"
    return True, ""


def build_release(pkg: Package, con, out_dir: Path, info: BuildInfo, diffs=None, previous_label: str | None = None, memory_limit: str | None = None) -> Path:
    """Write a complete release into a temporary directory, then rename it into place.

    The connection comes locked from pipelines.package.duck.open_duckdb with its memory cap and a
    temporary directory outside the package and the release; it may write only in staging_dir."""
    check_version(info.version)
    final = out_dir / f"{RELEASE_PREFIX}{info.version}"
    if final.exists():
        raise ReleaseExists(f"{final} already exists; releases are immutable: choose a new --version or remove it")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir(out_dir, info.version)
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        create_release_views(con, pkg, info.as_of)
        fact_coverage = coverage(con, pkg)  # one computation for the DuckDB table and NOTES.md
        counts = write_tables(con, pkg, tmp, info, diffs or [], fact_coverage)
        write_csv_renditions(con, pkg, tmp)
        write_descriptor(pkg, tmp, info)
        changes = diff_markdown(diffs, previous_label, f"this release ({info.version})") if diffs is not None else None
        (tmp / "NOTES.md").write_text(release_notes(con, info, counts, changes, previous_label, fact_coverage), encoding="utf-8")
        (tmp / "README.md").write_text(dataset_card(pkg, info, counts), encoding="utf-8")
        write_checksums(tmp)
        try:
            os.rename(tmp, final)  # atomic on one filesystem; fails if another build got there first
        except OSError as exc:
            raise ReleaseExists(f"{final} appeared while building (another build?): {exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
