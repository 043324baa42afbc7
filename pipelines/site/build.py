"""site: a static catalog site projected from a built release (its DuckDB file, descriptor and checksums), never from data/.

load the release -> shape each page's rows -> render Jinja templates and chart SVGs -> write the
directory atomically. Works from file:// and any static host: every link is relative.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.package.sql import q
from pipelines.release.query import connect_release
from pipelines.site import charts

TABLES = (
    "models",
    "classes",
    "model_classes",
    "model_relations",
    "architectures",
    "fact_history",
    "sources",
    "citations",
    "reviews",
    "confidence_levels",
    "release_info",
    "release_changes",
    "fact_gaps",
    "class_rules",
    "fact_coverage",
)


class SiteError(Exception):
    pass


MARKER = ".model-atlas-site"  # written into every site: only a directory holding it may be replaced


def check_site_out(out: Path, release: Path) -> Path:
    """The directory the site replaces whole: refused unless it does not exist yet or is an earlier site.

    Anything else (the repository, data/, .git, a release, a symlink, a file) would be deleted by the
    replacement, so it is refused before anything is read or written."""
    if str(out) == "" or out.is_symlink():
        raise SiteError(f"--out {str(out)!r} is empty or a symbolic link; name a new directory such as site")
    if out.exists() and not out.is_dir():
        raise SiteError(f"--out {out} is a file, not a directory")
    try:
        target, rel = out.resolve(), release.resolve()
    except (OSError, RuntimeError) as exc:
        raise SiteError(f"--out {out} cannot be resolved ({exc})") from None
    for root in (target, *target.parents):  # a package's own directories are never a site, marker or not
        if (root / "datapackage.json").is_file() or (root / ".git").exists():
            inside = [root, root / "data", root / "schemas", root / ".git"]
            if any(target == p or p in target.parents for p in inside[1:]) or target == root:
                raise SiteError(f"--out {out} is or lies inside a repository's own files ({root}); choose a directory such as site")
    if ".git" in target.parts:
        raise SiteError(f"--out {out} lies inside a .git directory; choose a directory such as site")
    if target == rel or rel in target.parents or target in rel.parents:
        raise SiteError(f"--out {out} overlaps the release {release}, which must stay as it is; choose another directory such as site")
    if target.exists() and any(target.iterdir()) and not (target / MARKER).is_file():
        raise SiteError(
            f"--out {out} already exists and is not a site written by model-atlas (no {MARKER} file); "
            "the site replaces its directory whole, so choose a new directory such as site"
        )
    if target.exists():
        # a marker can be planted: replace only a directory that holds nothing but what a site writes
        for path in target.rglob("*"):
            if path.is_symlink() or (path.is_file() and path.name != MARKER and path.suffix not in SITE_SUFFIXES):
                raise SiteError(
                    f"--out {out} holds {path.relative_to(target)}, which a site never writes; the site replaces its directory whole, "
                    "so choose a new directory such as site"
                )
    return out


SITE_SUFFIXES = frozenset({".html", ".svg", ".csv", ".css", ".js"})


@dataclass
class Release:
    root: Path
    descriptor: dict
    checksums: dict[str, str]
    tables: dict[str, list[dict]] = field(default_factory=dict)
    columns: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # table -> (column, description)

    def info(self, key: str, default: str = "") -> str:
        return next((r["value"] for r in self.tables.get("release_info", []) if r["key"] == key), default)


def load_release(release: Path) -> Release:
    """Every table of the release as rows, plus column descriptions, the descriptor and SHA256SUMS."""
    db = release / "model-atlas.duckdb"
    if not db.is_file() or not (release / "datapackage.json").is_file():
        raise SiteError(f"{release} is not a release directory (no model-atlas.duckdb or datapackage.json); build one with: model-atlas build")
    descriptor = json.loads((release / "datapackage.json").read_text(encoding="utf-8"))
    sums = {}
    if (release / "SHA256SUMS").is_file():
        for line in (release / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            sums[name] = digest
    rel = Release(release, descriptor, sums)
    con = connect_release(db)
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for name in TABLES:
            if name not in present:
                rel.tables[name] = []
                continue
            cur = con.execute(f"SELECT * FROM {q(name)}")
            cols = [d[0] for d in cur.description]
            rel.tables[name] = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
            rel.columns[name] = con.execute(
                "SELECT column_name, coalesce(comment, '') FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [name]
            ).fetchall()
    finally:
        con.close()
    _check_ids(rel)
    return rel


# every id that becomes part of a file name or a link: the schemas' id pattern (one path segment of
# lower-case letters, digits and single hyphens, no dot, no slash)
SAFE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
PATH_IDS = (("models", "model_id"), ("classes", "class_id"))
# ids that become links (a forged file need not keep its foreign keys): may be empty
LINK_IDS = (
    ("models", "family_id"),
    ("classes", "parent_class_id"),
    ("model_classes", "model_id"),
    ("model_classes", "class_id"),
    ("model_relations", "model_id"),
    ("model_relations", "target_id"),
)


def _check_ids(rel: Release) -> None:
    """Refuse a release whose page ids could leave the site directory (a forged release can be
    internally consistent, so this does not rely on verify)."""
    for table, column in PATH_IDS + LINK_IDS:
        for row in rel.tables.get(table, []):
            value = row.get(column)
            if value is None and (table, column) in LINK_IDS:
                continue
            if not isinstance(value, str) or len(value) > 80 or not SAFE_ID.fullmatch(value):
                shown = repr(value)[:80]
                raise SiteError(
                    f"{rel.root}: {table}.{column} {shown} is not an id a page can be named after "
                    "(lower-case letters, digits and single hyphens); the release was not built by model-atlas from valid data"
                )


def _index(rows: list[dict], key: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out


def _csv(columns: list[str], rows: list[tuple]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue()


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("pipelines.site", "templates"), autoescape=select_autoescape(["j2", "html"]), undefined=StrictUndefined)
    env.filters["fmt_int"] = lambda v: "" if v is None else f"{v:,}"
    env.filters["fmt"] = lambda v: (
        "" if v is None else (", ".join(map(str, v)) if isinstance(v, list) else ("yes" if v is True else "no" if v is False else str(v)))
    )
    return env


def _ancestors(model_id: str, edges: dict[str, list[dict]], seen: set[str] | None = None) -> list[tuple[str, str, int]]:
    """(ancestor, relation, depth) through lineage edges, without looping."""
    seen = seen if seen is not None else {model_id}
    out = []
    for e in edges.get(model_id, []):
        if e["relation"] == "uses-model" or e["target_id"] in seen:
            continue
        seen.add(e["target_id"])
        out.append((e["target_id"], e["relation"], 1))
        out += [(a, r, d + 1) for a, r, d in _ancestors(e["target_id"], edges, seen)]
    return out


_CTX: dict = {}  # what the page functions share; set before the worker processes fork, so they inherit it
_SHARED = (
    "models",
    "by_model",
    "classes",
    "memberships",
    "class_rows",
    "children",
    "citations",
    "sources",
    "reviews",
    "class_reviews",
    "class_citations",
    "arch",
    "history",
    "gaps",
    "edges",
    "family_members",
    "derived_of",
    "reverse",
    "levels",
    "ambiguous",
    "model_cols",
    "arch_cols",
    "fact_fields",
    "env",
    "common",
    "rel",
    "t",
)


def _shared_values() -> tuple:
    """The shared context, in the order the page functions unpack it."""
    return tuple(_CTX[k] for k in ('models', 'by_model', 'classes', 'memberships', 'class_rows', 'children', 'below', 'citations', 'sources', 'reviews', 'class_reviews', 'class_citations', 'arch', 'history', 'gaps', 'edges', 'family_members', 'derived_of', 'reverse', 'levels', 'ambiguous', 'model_cols', 'arch_cols', 'fact_fields', 'env', 'common', 'rel', 't'))  # fmt: skip


def _put(root: Path, rel: str, text: str) -> tuple[str, int]:
    """Write one file of the site into the staging directory; returns its path and size in bytes."""
    data = text.encode("utf-8")
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return rel, len(data)


def _model_pages(chunk: list[dict]) -> list[tuple[str, int]]:
    """Render and write model pages straight into the staging directory (a worker holds one page at a time)."""
    return [_put(_CTX["staging"], *_model_page(m)) for m in chunk]


def _class_pages(chunk: list[str]) -> list[tuple[str, int]]:
    return [_put(_CTX["staging"], *item) for cid in chunk for item in _class_page(cid)]


def _home_charts(charts_: list) -> list[tuple[str, int]]:
    """The home page's charts: SVG and CSV of each, written by a worker (the one that has the renderer warm)."""
    out = []
    for c in charts_:
        out += [_put(_CTX["staging"], f"charts/{c.slug}.svg", c.svg()), _put(_CTX["staging"], f"charts/{c.slug}.csv", _csv(c.columns, c.rows))]
    return out


def _models_table(_: list) -> list[tuple[str, int]]:
    """models.html: every model in one sortable, filterable table (readable without JavaScript)."""
    models, memberships, classes, env, common = (_CTX[k] for k in ("models", "memberships", "classes", "env", "common"))
    rows = []
    for m in models:
        cls = sorted(memberships.get(m["model_id"], set()))
        rows.append({**m, "classes": cls, "year": m["release_date"].year if m["release_date"] else None})
    orgs = sorted({m["organization"] for m in models})
    text = env.get_template("models.html.j2").render(
        **common, root="", rows=rows, orgs=orgs, classes=sorted(classes), years=sorted({r["year"] for r in rows if r["year"]})
    )
    return [_put(_CTX["staging"], "models.html", text)]


def _in_workers(jobs: list[tuple]) -> list:
    """Run (fn, items) jobs, each fn over chunks of its items, in one pool of forked worker processes
    (forked once, so each worker starts the chart renderer at most once) when there is more than one
    core and enough work; results of all jobs, in order."""
    import gc

    workers = int(os.environ.get("MODEL_ATLAS_SITE_WORKERS") or min(os.cpu_count() or 1, 8))
    total = sum(len(items) for _, items in jobs)
    # the release's rows are millions of long-lived objects: frozen, the garbage collector stops
    # rescanning them while pages render (a quarter of the render time at 20,000 models), and forked
    # workers do not copy the pages that hold them
    gc.freeze()
    try:
        if workers < 2 or total < 64 or "fork" not in multiprocessing.get_all_start_methods():
            return [r for fn, items in jobs for r in fn(items)]
        tasks = []
        for fn, items in jobs:
            size = max(1, min(64, len(items) // (workers * 4) or 1))
            tasks += [(fn, items[i : i + size]) for i in range(0, len(items), size)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pending = [pool.apply_async(fn, (chunk,)) for fn, chunk in tasks]
            return [r for p in pending for r in p.get()]
    finally:
        gc.unfreeze()


def build_site(release_dir: Path, out_dir: Path) -> dict:
    """Write the site for a release into out_dir (replacing it whole); returns counts for the caller to print."""
    from pipelines.release.build import verify_release

    if not (release_dir / "model-atlas.duckdb").is_file() or not (release_dir / "datapackage.json").is_file():
        raise SiteError(f"{release_dir} is not a release directory (no model-atlas.duckdb or datapackage.json); build one with: model-atlas build")
    check_site_out(out_dir, release_dir)
    problems = verify_release(release_dir)
    if problems:
        raise SiteError(f"{release_dir} does not verify ({len(problems)} problem(s), first: {problems[0]}); the site shows only verified releases")
    rel = load_release(release_dir)
    t = rel.tables
    models = t["models"]
    by_model = {m["model_id"]: m for m in models}
    classes = {c["class_id"]: c for c in t["classes"]}
    memberships: dict[str, set[str]] = {}
    class_rows = _index(t["model_classes"], "class_id")
    for r in t["model_classes"]:
        memberships.setdefault(r["model_id"], set()).add(r["class_id"])
    children = _index([c for c in t["classes"] if c["parent_class_id"]], "parent_class_id")

    def below(cid: str) -> set[str]:
        out = {cid}
        for ch in children.get(cid, []):
            out |= below(ch["class_id"])
        return out

    below_of = {cid: below(cid) for cid in classes}

    citations = _index([c for c in t["citations"] if c["table_name"] in ("models", "architectures")], "row_id")
    sources = {s["source_id"]: s for s in t["sources"]}
    reviews = _index([r for r in t["reviews"] if r["table_name"] == "models"], "row_id")
    class_reviews = _index([r for r in t["reviews"] if r["table_name"] == "classes"], "row_id")
    class_citations = _index([c for c in t["citations"] if c["table_name"] == "classes"], "row_id")
    arch = {a["model_id"]: a for a in t["architectures"]}
    history = _index(t["fact_history"], "model_id")
    gaps = _index(t["fact_gaps"], "row_id")
    edges = _index(t["model_relations"], "model_id")
    family_members = _index([m for m in models if m["family_id"]], "family_id")
    derived_of = _index([r for r in t["model_classes"] if r.get("derived")], "model_id")
    reverse = _index(t["model_relations"], "target_id")
    levels = {c["level"]: c["definition"] for c in t["confidence_levels"]}
    ambiguous = {r["value"].lower() for r in t["class_rules"] if r["kind"] == "ambiguous-name" and r["value"]}
    model_cols = dict(rel.columns.get("models", []))
    arch_cols = dict(rel.columns.get("architectures", []))
    fact_fields = [c for c, _ in rel.columns.get("models", []) if c in FACT_ORDER]

    env = _env()
    staging = _staging(out_dir)
    try:
        return _build(release_dir, out_dir, staging, locals())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _build(release_dir: Path, out_dir: Path, staging: Path, shared: dict) -> dict:
    """Render every page into staging (model and class pages by the workers, which write them as they
    go), then put the directory in place."""
    rel, t, models, classes, memberships, class_rows, children, levels, env = (
        shared[k] for k in ("rel", "t", "models", "classes", "memberships", "class_rows", "children", "levels", "env")
    )
    version = rel.info("version", rel.descriptor.get("version", ""))
    common = {"version": version, "as_of": rel.info("as_of"), "title": "Model Atlas"}
    pages: dict[str, str] = {}

    counts = {name: len(rows) for name, rows in t.items() if name not in ("release_info", "confidence_levels")}
    kinds: dict[str, int] = {}
    for m in models:
        kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1

    _CTX.clear()
    _CTX.update({k: v for k, v in shared.items() if k in _SHARED})
    _CTX["common"] = common
    _CTX["below"] = shared["below_of"].__getitem__
    _CTX["class_chart"] = charts.ClassChart()
    _CTX["staging"] = staging
    # the charts of the home page are declared here and rendered by a worker: the chart renderer's
    # threads do not survive a fork, so this process never starts it
    chart_list = [
        charts.params_over_time(models, memberships),
        charts.context_over_time(models),
        charts.open_weights_per_year(models),
        charts.models_per_facet(list(classes.values()), {k: len(v) for k, v in class_rows.items()}),
    ]
    # the one-table models page is the longest single job at scale: it goes first, beside the others
    written = _in_workers([(_models_table, [None]), (_class_pages, list(classes)), (_home_charts, chart_list), (_model_pages, list(models))])

    pages["index.html"] = env.get_template("index.html.j2").render(
        **common, root="", charts=chart_list, counts=counts, kinds=kinds, levels=levels, info=rel.tables["release_info"]
    )
    roots = sorted((c for c in classes.values() if not c["parent_class_id"]), key=lambda c: (c["facet"], c["class_id"]))
    pages["classes.html"] = env.get_template("classes.html.j2").render(
        **common, root="", roots=roots, children=children, counts={k: len(v) for k, v in class_rows.items()}
    )
    pages["changes.html"] = env.get_template("changes.html.j2").render(**common, root="", changes=t["release_changes"], previous=rel.info("previous"))
    pages["coverage.html"] = env.get_template("coverage.html.j2").render(**common, root="", rows=t["fact_coverage"])
    artifacts = []
    for name in sorted(rel.checksums):
        path = release_dir / name
        # a GitHub release holds its files flat: parquet/models.parquet is the asset models.parquet
        artifacts.append(
            {"name": name, "asset": name.rsplit("/", 1)[-1], "bytes": path.stat().st_size if path.is_file() else None, "sha256": rel.checksums[name]}
        )
    pages["downloads.html"] = env.get_template("downloads.html.j2").render(
        **common, root="", artifacts=artifacts, base=os.environ.get("MODEL_ATLAS_DOWNLOAD_BASE", "")
    )
    pages["404.html"] = env.get_template("notfound.html.j2").render(**common, root="")

    written += [_put(staging, name, text) for name, text in pages.items()]
    _finish(staging, out_dir)
    return {
        "pages": sum(1 for name, _ in written if name.endswith(".html")),
        "charts": sum(1 for name, _ in written if name.endswith(".svg")),
        "bytes": sum(size for _, size in written),
    }


def _model_page(m: dict) -> tuple[str, str]:
    """One model page (runs in a worker: reads the shared context set up by build_site)."""
    models, by_model, classes, memberships, class_rows, children, below, citations, sources, reviews, class_reviews, class_citations, arch, history, gaps, edges, family_members, derived_of, reverse, levels, ambiguous, model_cols, arch_cols, fact_fields, env, common, rel, t = _shared_values()  # fmt: skip
    mid = m["model_id"]
    cites = citations.get(mid, [])
    facts = []
    for f in fact_fields:
        facts.append(
            {
                "field": f,
                "description": model_cols.get(f, ""),
                "value": m.get(f),
                "precision": m.get(f + "_precision"),
                "cites": [(c, sources.get(c["source_id"])) for c in cites if c["table_name"] == "models" and c["field"] == f],
                "gap": next((g for g in gaps.get(mid, []) if g["table_name"] == "models" and g["field"] == f), None),
            }
        )
    a = arch.get(mid)
    arch_facts = []
    if a:
        for col, desc in rel.columns.get("architectures", []):
            if col in ARCH_ORDER and a.get(col) is not None:
                arch_facts.append(
                    {
                        "field": col,
                        "description": desc,
                        "value": a[col],
                        "cites": [(c, sources.get(c["source_id"])) for c in cites if c["table_name"] == "architectures" and c["field"] == col],
                    }
                )
    anc = [(by_model.get(x), r, d) for x, r, d in _ancestors(mid, edges)]
    desc = [(by_model.get(e["model_id"]), e["relation"]) for e in reverse.get(mid, []) if e["relation"] != "uses-model"]
    used_by = [by_model.get(e["model_id"]) for e in reverse.get(mid, []) if e["relation"] == "uses-model"]
    uses = [by_model.get(e["target_id"]) for e in edges.get(mid, []) if e["relation"] == "uses-model"]
    return f"models/{mid}.html", env.get_template("model.html.j2").render(
        **common,
        root="../",
        m=m,
        facts=facts,
        arch=arch_facts,
        arch_cols=arch_cols,
        row_cites=[(c, sources.get(c["source_id"])) for c in cites if c["field"] == "*"],
        reviews=sorted(reviews.get(mid, []), key=lambda r: (r["reviewed_on"], r["review_id"]), reverse=True),
        corrections=[r for r in reviews.get(mid, []) if r["verdict"] == "corrected"],
        level=levels.get(m.get("confidence") or "", ""),
        classes=[classes[c] for c in sorted(memberships.get(mid, set())) if c in classes],
        derived={r["class_id"] for r in derived_of.get(mid, [])},
        family=by_model.get(m["family_id"]) if m["family_id"] else None,
        members=family_members.get(mid, []),
        ancestors=anc,
        descendants=desc,
        used_by=used_by,
        uses=uses,
        history=history.get(mid, []),
        sources=sources,
    )


def _class_page(cid: str) -> list[tuple[str, str]]:
    """One class page with its chart SVG and CSV."""
    models, by_model, classes, memberships, class_rows, children, below, citations, sources, reviews, class_reviews, class_citations, arch, history, gaps, edges, family_members, derived_of, reverse, levels, ambiguous, model_cols, arch_cols, fact_fields, env, common, rel, t = _shared_values()  # fmt: skip
    c = classes[cid]
    member_ids = sorted({r["model_id"] for sub in below(cid) for r in class_rows.get(sub, [])})
    members = [by_model[x] for x in member_ids if x in by_model]
    chart = _CTX["class_chart"].chart(cid, members)
    out = [(f"charts/{chart.slug}.svg", chart.svg()), (f"charts/{chart.slug}.csv", _csv(chart.columns, chart.rows))]
    path = []
    p = c
    while p and p["parent_class_id"]:
        p = classes.get(p["parent_class_id"])
        if p:
            path.insert(0, p)
    names = [n for n in [c["abbreviation"], *(c["aliases"] or [])] if n]
    out.append(
        (
            f"classes/{cid}.html",
            env.get_template("class.html.j2").render(
                **common,
                root="../",
                c=c,
                path=path,
                children=children.get(cid, []),
                names=[(n, n.lower() in ambiguous) for n in names],
                members=members,
                direct={r["model_id"] for r in class_rows.get(cid, [])},
                chart=chart,
                reviews=class_reviews.get(cid, []),
                cites=[(x, sources.get(x["source_id"])) for x in class_citations.get(cid, [])],
                level=levels.get(c.get("confidence") or "", ""),
                rules=[r for r in t["class_rules"] if cid in (r["class_id"], r["other_class_id"])],
            ),
        )
    )
    return out


FACT_ORDER = (
    "release_date",
    "params_total",
    "params_active",
    "context_length",
    "max_output_tokens",
    "knowledge_cutoff",
    "training_tokens",
    "license",
    "open_weights",
    "input_modalities",
    "output_modalities",
    "reasoning",
    "tool_calling",
    "status",
    "status_date",
)
ARCH_ORDER = ("layers", "hidden_size", "attention_heads", "kv_heads", "vocab_size", "attention_type", "positional_encoding", "experts_total", "experts_active")


def _staging(out_dir: Path) -> Path:
    """A new temporary sibling of out_dir: the site is written there and renamed into place whole."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))


def _finish(staging: Path, out_dir: Path) -> None:
    """Add the static files and the marker, then swap staging in for out_dir: never half a site."""
    out_dir = out_dir.resolve()
    shutil.copytree(Path(__file__).parent / "static", staging / "static")
    staging.chmod(0o755)  # mkdtemp makes it private; a web server reads the site as another user
    (staging / MARKER).write_text("A static site written by model-atlas site; the command may replace this directory.\n", encoding="utf-8")
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out_dir)
