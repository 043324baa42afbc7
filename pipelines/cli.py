"""The model-atlas command line. Exit codes: 0 ok, 1 findings of severity error, 2 usage or unreadable package."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import date
from pathlib import Path

from pipelines.package.clock import utc_today
from pipelines.release.query import QUERY_MAX_ROWS, QUERY_MEMORY_LIMIT, QUERY_TIMEOUT_SECONDS

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

# DuckDB's memory while a release is written (build --memory-limit): without a cap it keeps
# the written pages of the release file cached and the build peaked at just under 2 GiB on the
# 1,000,000-model benchmark; with it, about 1.5 GiB at the same speed (Arrow copies and Python come on
# top). Above the cap DuckDB drops cached pages and, if it must, spills to a directory beside the
# release, which it removes when the connection closes.
BUILD_MEMORY_LIMIT = "1200MB"


def _memory(text: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text.strip(), re.IGNORECASE):
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size; write for example 1200MB or 4GB")
    return text.strip()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and 86400")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) > 10**9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a row count (a whole number, 0 = no limit)")
    return int(text)


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None


def _print_package_error(exc, fmt: str = "human") -> int:
    from pipelines.package.findings import FORMATS

    print(FORMATS[fmt](exc.findings, "datapackage.json"), file=sys.stdout if fmt != "human" else sys.stderr)
    return EXIT_USAGE


def cmd_validate(args) -> int:
    from pipelines.checks.validate import validate
    from pipelines.package.descriptor import PackageError
    from pipelines.package.findings import FORMATS

    try:
        report = validate(args.root, args.as_of, changed_since=args.changed_since)
    except PackageError as exc:
        return _print_package_error(exc, args.format)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(FORMATS[args.format](report.findings, report.checked))
    return EXIT_FINDINGS if report.errors else EXIT_OK


def _out_of_memory(limit: str, exc) -> int:
    print(
        f"error: the build needs more memory than --memory-limit {limit} allows; nothing was written. "
        f"Raise it, for example --memory-limit 4GB.\n({str(exc).splitlines()[0]})",
        file=sys.stderr,
    )
    return EXIT_USAGE


def cmd_build(args) -> int:
    import duckdb

    from pipelines.checks.validate import connect_checked
    from pipelines.package.descriptor import PackageError, load_package
    from pipelines.package.findings import format_human
    from pipelines.package.snapshot import SnapshotError, resolve_commit
    from pipelines.release.build import (
        OutputError,
        ReleaseExists,
        build_info,
        build_release,
        check_out_dir,
        check_version,
        existing_release,
        same_release,
        staging_dir,
        verify_release,
    )

    try:
        pkg = load_package(args.root)
    except PackageError as exc:
        return _print_package_error(exc)
    version = args.version if args.version is not None else pkg.descriptor.get("version", "0.0.0")
    previous_dir, previous_ref = None, None
    try:
        check_version(version)
        out = check_out_dir(pkg.root, Path(args.out))
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    existing = existing_release(out, version)
    if existing:  # releases are immutable: the same inputs again is a no-op, other content is refused
        same, why = same_release(existing, pkg, args.as_of)
        if not same:
            print(f"error: {why}", file=sys.stderr)
            return EXIT_FINDINGS
        print(f"{existing.path} already holds version {version} built from these inputs (as of {existing.as_of}); verified, left unchanged")
        return EXIT_OK
    info = build_info(pkg, version, args.as_of)
    try:
        if args.previous:
            prev = Path(args.previous)
            if prev.is_dir():
                problems = verify_release(prev)
                if problems:
                    raise OutputError(f"--previous {prev} is not a verified release ({len(problems)} problem(s), first: {problems[0]}); nothing was written")
                previous_dir = prev.resolve()
                if previous_dir == out.resolve() or previous_dir in out.resolve().parents:
                    raise OutputError(f"--out {out} lies inside the previous release {prev}, which must stay as it is")
            else:
                previous_ref = resolve_commit(pkg.root, args.previous)
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SnapshotError as exc:
        print(f"error: --previous: {exc}", file=sys.stderr)
        return EXIT_USAGE

    allowed = [staging_dir(out, info.version)] + ([previous_dir] if previous_dir else [])
    try:
        con, loaded, findings = connect_checked(pkg, info.as_of, directories=allowed, memory_limit=args.memory_limit)
    except duckdb.OutOfMemoryException as exc:
        return _out_of_memory(args.memory_limit, exc)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        con.close()
        print(format_human(findings, "data/"), file=sys.stderr)
        print("\nbuild refused: fix the errors above (model-atlas validate); nothing was written.", file=sys.stderr)
        return EXIT_FINDINGS

    diffs, label = None, None
    try:
        if args.previous:
            from pipelines.package.snapshot import diff_snapshots, load_git_snapshot, load_release_snapshot
            from pipelines.release.changes import current_snapshot, derived_column_names

            if previous_dir:  # compare released tables with released tables
                old = load_release_snapshot(con, previous_dir, "old")
                new = current_snapshot(con, pkg, info.as_of, release_form=True)
            else:  # compare the CSV tables at a git ref with the CSV tables now
                old = load_git_snapshot(con, pkg.root, previous_ref, "old")
                old.label = args.previous
                new = current_snapshot(con, pkg, info.as_of)
            diffs, label = diff_snapshots(con, old, new, ignore=derived_column_names(pkg)), old.label
        final = build_release(pkg, con, out, info, diffs, label)
    except ReleaseExists as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    except duckdb.OutOfMemoryException as exc:
        return _out_of_memory(args.memory_limit, exc)
    except SnapshotError as exc:
        print(f"error: --previous: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        con.close()
    print(f"built {final} (version {info.version}, as of {info.as_of}, {len(findings)} warning(s))")
    return EXIT_OK


def cmd_verify(args) -> int:
    from pipelines.release.build import verify_release

    release = Path(args.release)
    if not release.is_dir():
        print(f"error: {release} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    problems = verify_release(release)
    for p in problems:
        print(f"{release}/{p}")
    if problems:
        print(f"{len(problems)} problem(s): do not use this release; download it again.")
        return EXIT_FINDINGS
    print(f"verified {release}: every file matches SHA256SUMS and datapackage.json")
    return EXIT_OK


def latest_release(out: Path) -> Path | None:
    releases = sorted((p for p in out.glob("model-atlas-*") if p.is_dir() and (p / "model-atlas.duckdb").exists()), key=lambda p: p.stat().st_mtime)
    return releases[-1] if releases else None


def cmd_query(args) -> int:
    from pipelines.release.query import QueryError, print_result, run_query

    release = Path(args.release) if args.release else latest_release(Path("dist"))
    if release is None or not (release / "model-atlas.duckdb").is_file():
        print("error: no release found; build one with model-atlas build, or pass --release DIR", file=sys.stderr)
        return EXIT_USAGE
    from pipelines.release.query import cap_address_space

    cap_address_space(args.memory_limit)
    try:
        result = run_query(
            release / "model-atlas.duckdb", args.sql, memory_limit=args.memory_limit, timeout=args.timeout, max_rows=args.max_rows or None, hard_stop=True
        )
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    print_result(result.columns, result.rows, args.format, sys.stdout)
    if result.truncated:
        print(f"note: only the first {args.max_rows} rows are shown; add LIMIT/OFFSET to the query, or raise --max-rows (0 = no limit)", file=sys.stderr)
    return EXIT_OK


def cmd_diff(args) -> int:
    from pipelines.package.descriptor import PackageError, load_package
    from pipelines.package.snapshot import SnapshotError, default_base, diff_snapshots, load_git_snapshot, load_package_snapshot
    from pipelines.package.tables import connect_package
    from pipelines.release.changes import diff_markdown

    try:
        pkg = load_package(args.root)
        base, label = (args.base, args.base) if args.base else default_base(pkg.root)
        con = connect_package(pkg)
        new = load_package_snapshot(con, pkg, "new", "working tree")
        old = load_git_snapshot(con, pkg.root, base, "old")
    except PackageError as exc:
        return _print_package_error(exc)
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(diff_markdown(diff_snapshots(con, old, new), label, "the working tree"), end="")  # its first line names the base
    return EXIT_OK


def cmd_stale(args) -> int:
    from pipelines.contrib.stale import stale_report
    from pipelines.package.descriptor import PackageError, load_package

    try:
        pkg = load_package(args.root)
    except PackageError as exc:
        return _print_package_error(exc)
    print(stale_report(pkg, args.as_of or utc_today(), args.format, include_due=not args.stale_only), end="")
    return EXIT_OK


def cmd_new(args) -> int:
    from pipelines.contrib.new import NewRowError, new_rows
    from pipelines.package.descriptor import PackageError

    try:
        out = new_rows(Path(args.root), args.what, args.id, args.name, args.append, today=args.date or utc_today())
    except PackageError as exc:
        return _print_package_error(exc)
    except NewRowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    print(out, end="")
    return EXIT_OK


def cmd_fmt(args) -> int:
    from pipelines.contrib.fmt import format_package
    from pipelines.package.descriptor import PackageError, load_package

    try:
        pkg = load_package(args.root)
    except PackageError as exc:
        return _print_package_error(exc)
    changed, skipped = format_package(pkg, check=args.check)
    for s in skipped:
        print(f"skipped {s} (run model-atlas validate for details)", file=sys.stderr)
    verb = "would reformat" if args.check else "reformatted"
    for c in changed:
        print(f"{verb} {c}")
    print(f"{len(changed)} file(s) {verb}, {len(pkg.tables) - len(changed) - len(skipped)} already canonical, {len(skipped)} skipped")
    return EXIT_FINDINGS if (args.check and changed) or skipped else EXIT_OK


def cmd_coverage(args) -> int:
    from pipelines.checks.coverage import coverage, coverage_csv, coverage_markdown
    from pipelines.checks.validate import connect_checked
    from pipelines.package.descriptor import PackageError, load_package

    try:
        pkg = load_package(args.root)
    except PackageError as exc:
        return _print_package_error(exc)
    con, _, findings = connect_checked(pkg, args.as_of or utc_today())
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        con.close()
        print(f"error: data/ has {len(errors)} error(s), so the counts would not be true; run model-atlas validate and fix them first", file=sys.stderr)
        return EXIT_FINDINGS
    rows = coverage(con, pkg)
    con.close()
    print((coverage_csv if args.format == "csv" else coverage_markdown)(rows), end="")
    return EXIT_OK


def cmd_ingest(args) -> int:
    from pipelines.contrib.ingest import IngestError, ingest_files
    from pipelines.package.descriptor import PackageError, load_package

    try:
        pkg = load_package(args.root)
    except PackageError as exc:
        return _print_package_error(exc)
    try:
        report = ingest_files(
            pkg, [Path(p) for p in args.records], [Path(p) for p in args.sources], args.reviewer, args.date or utc_today(), write=not args.dry_run
        )
    except (IngestError, OSError) as exc:
        print(f"error: {exc}\n\nNothing was written. Fix the record, then run the command again.", file=sys.stderr)
        return EXIT_FINDINGS
    print(report.text(), end="")
    print("dry run: nothing was written" if args.dry_run else "now run: model-atlas fmt && model-atlas validate")
    return EXIT_FINDINGS if report.conflicts else EXIT_OK


def cmd_site(args) -> int:
    import time

    from pipelines.site.build import SiteError, build_site

    release = Path(args.release) if args.release else _newest_release(Path("dist"))
    if release is None:
        print("error: no release under dist/\n\nBuild one first: model-atlas build (or pass --release DIR).", file=sys.stderr)
        return EXIT_USAGE
    if not args.out.strip():
        print("error: --out is empty; name a directory such as site", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    started = time.perf_counter()
    try:
        counts = build_site(release, out)
    except SiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"wrote {out}: {counts['pages']} pages, {counts['charts']} charts, {counts['bytes'] / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s from {release}"
    )
    return EXIT_OK


def _newest_release(dist: Path) -> Path | None:
    found = sorted((p for p in dist.glob("model-atlas-*") if (p / "model-atlas.duckdb").is_file()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def cmd_from_config(args) -> int:
    import json

    from pipelines.contrib.from_config import ConfigError, candidate_record, check_id, read_config

    for kind, value in (("--model-id", args.model_id), ("--source-id", args.source_id)):
        problem = check_id(kind, value)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_USAGE
    path = Path(args.config)
    try:
        config = read_config(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # the default prefix is the file's name only when it is a plain one (config.json, params.json); a
    # name with formula, control or other characters never reaches a locator (attack round 4)
    plain = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", path.name)
    prefix = (path.name if plain else "config file") if args.locator_prefix is None else args.locator_prefix
    cand = candidate_record(config, args.model_id, args.source_id, prefix, update=args.update)
    for note in cand.notes:
        print(f"{path}: note: {note}", file=sys.stderr)
    if not cand.stated:
        print(
            f"error: {path}: states none of the layer, width, head, vocabulary, expert, position or context keys model-atlas reads\n\n"
            "fix: give the model's config.json or params.json (for a multimodal model, the file with text_config or llm_config)",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    print(json.dumps(cand.record, ensure_ascii=False))
    return EXIT_OK


def cmd_crosscheck(args) -> int:
    from pipelines.contrib.crosscheck import CrosscheckError, crosscheck, load_atlas, read_aliases, read_export, result_markdown
    from pipelines.package.descriptor import PackageError, load_package

    try:
        pkg = load_package(args.root)
    except PackageError as exc:
        return _print_package_error(exc)
    try:
        atlas = load_atlas(pkg)
        entries = read_export(Path(args.export), args.format, args.map, list(atlas.types))
        aliases = read_aliases(Path(args.aliases)) if args.aliases else {}
        result = crosscheck(atlas, entries, aliases, args.aliases or "aliases")
    except CrosscheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(result_markdown(result, Path(args.export).name, args.list_unmatched), end="")
    return EXIT_FINDINGS if result.disagreements else EXIT_OK


def _add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root holding datapackage.json (default: .)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-atlas", description="Validate, build and query the Model Atlas dataset.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('pipelines').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    v = sub.add_parser(
        "validate",
        help="check data/ against the schemas and every rule; print all findings",
        description="Check every table: file hygiene, Table Schema, keys, row rules, cross-table rules, staleness and safety. "
        "Exit 0 when there is no error (warnings allowed), 1 with errors, 2 when the package cannot be read.",
    )
    _add_root(v)
    v.add_argument(
        "--as-of",
        type=_as_of,
        default=None,
        help="the date that dates may not pass and review ages are measured at, YYYY-MM-DD (default: today's date in UTC)",
    )
    v.add_argument("--format", choices=["human", "json", "github"], default="human", help="output format (default: human)")
    v.add_argument(
        "--changed-since",
        metavar="REF",
        default=None,
        help="pull-request mode: rows changed since this git ref must be fresh; other stale rows are only warnings",
    )
    v.set_defaults(func=cmd_validate)

    b = sub.add_parser(
        "build",
        help="validate, then compile a release (Parquet, DuckDB, datapackage.json, NOTES.md, SHA256SUMS)",
        description="Validate data/ and, when there is no error, write dist/model-atlas-<version>/ atomically. "
        "If that version already exists and was built from the same inputs, it is left as it is (exit 0); if it holds other data, "
        "the build is refused (exit 1): releases are immutable. Writes nothing and exits 1 when validation finds an error. "
        "The build time recorded is SOURCE_DATE_EPOCH when set, else the commit time of a clean checkout, else the current time "
        "(a tree with uncommitted changes is marked dirty in release_info and NOTES.md).",
    )
    _add_root(b)
    b.add_argument("--version", default=None, help="release version (default: the version in datapackage.json)")
    b.add_argument(
        "--as-of",
        type=_as_of,
        default=None,
        help="the date that dates may not pass and review_status is computed at, YYYY-MM-DD (default: today's date in UTC; "
        "the release workflow passes the tag commit's date)",
    )
    b.add_argument("--out", default="dist", help="directory that receives the release directory (default: dist)")
    b.add_argument("--previous", default=None, metavar="DIR|REF", help="a previous release directory or git ref to list changes against in NOTES.md")
    b.add_argument(
        "--memory-limit",
        type=_memory,
        default=BUILD_MEMORY_LIMIT,
        metavar="SIZE",
        help=f"DuckDB's memory cap while the release is written; above it, cached pages are dropped and data spills to disk (default: {BUILD_MEMORY_LIMIT})",
    )
    b.set_defaults(func=cmd_build)

    ve = sub.add_parser(
        "verify",
        help="re-check a downloaded release against SHA256SUMS and its datapackage.json",
        description="Recompute every checksum of a release directory; name each file that does not match. Exit 1 on any mismatch.",
    )
    ve.add_argument("release", help="the release directory, e.g. dist/model-atlas-0.1.0")
    ve.set_defaults(func=cmd_verify)

    qy = sub.add_parser(
        "query",
        help="run a read-only SQL query on a built release",
        description="Open the release's DuckDB file read-only, with external access and extensions disabled, and print the result. "
        "The query runs under a memory cap and a time limit, and at most --max-rows rows are printed.",
    )
    qy.add_argument("sql", help="the SQL query")
    qy.add_argument("--release", default=None, help="release directory (default: the newest under dist/)")
    qy.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format (default: table)")
    qy.add_argument(
        "--memory-limit", type=_memory, default=QUERY_MEMORY_LIMIT, metavar="SIZE", help=f"DuckDB's memory cap for the query (default: {QUERY_MEMORY_LIMIT})"
    )
    qy.add_argument(
        "--timeout",
        type=_seconds,
        default=QUERY_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"stop the query after this wall time (default: {QUERY_TIMEOUT_SECONDS:g})",
    )
    qy.add_argument("--max-rows", type=_count, default=QUERY_MAX_ROWS, metavar="N", help=f"print at most N rows; 0 = no limit (default: {QUERY_MAX_ROWS})")
    qy.set_defaults(func=cmd_query)

    d = sub.add_parser(
        "diff",
        help="rows added, removed and changed between a git ref and the working tree (Markdown)",
        description="Compare the data at a git ref with the working tree, row by row on primary keys. Without BASE: the commit "
        "where this branch left origin/main (their merge base), or main when there is no origin/main; the first line says which.",
    )
    d.add_argument("base", nargs="?", default=None, help="git ref to compare against (default: the merge base with origin/main, else with main)")
    _add_root(d)
    d.set_defaults(func=cmd_diff)

    st = sub.add_parser(
        "stale",
        help="rows past their review policy, oldest first",
        description="List rows whose latest review is past the warn-after (due) or error-after (stale) age at --as-of.",
    )
    _add_root(st)
    st.add_argument("--as-of", type=_as_of, default=None, help="measure review ages at this date, YYYY-MM-DD (default: today's date in UTC)")
    st.add_argument("--format", choices=["table", "markdown"], default="table", help="output format (default: table)")
    st.add_argument("--stale-only", action="store_true", help="only rows past error-after, not those merely due")
    st.set_defaults(func=cmd_stale)

    n = sub.add_parser(
        "new",
        help="print (or append) template rows for a new model, class, source or review",
        description="Write valid template rows with a slugified id and today's date; refuses an id that exists.",
    )
    n.add_argument("what", choices=["model", "class", "source", "review"], help="what to add")
    n.add_argument("--name", required=True, help="display name (for a review: the row id it reviews, as table/row_id)")
    n.add_argument("--id", default=None, help="id to use (default: slugified name)")
    n.add_argument("--append", action="store_true", help="append the rows to data/*.csv instead of printing them")
    n.add_argument("--date", type=_as_of, default=None, help="date to write (default: today's date in UTC)")
    _add_root(n)
    n.set_defaults(func=cmd_new)

    f = sub.add_parser(
        "fmt",
        help="rewrite data/*.csv in canonical form (sorted by key, trimmed, LF, minimal quoting)",
        description="Put every CSV into canonical form without changing a value or dropping a row. "
        "With --check, change nothing and exit 1 if any file would change.",
    )
    _add_root(f)
    f.add_argument("--check", action="store_true", help="only report files that are not canonical; exit 1 if any")
    f.set_defaults(func=cmd_fmt)

    cv = sub.add_parser(
        "coverage",
        help="per fact field: how many rows state it, document it as unpublished, or simply lack it",
        description="Count, for every fact field of models and architectures, the rows that state it (and cite a primary source), "
        "the rows whose fact_gaps entry says it is unpublished, not applicable or unverified, and the rows that simply lack it.",
    )
    _add_root(cv)
    cv.add_argument("--as-of", type=_as_of, default=None, help="date for the checks that run first (default: today's date in UTC)")
    cv.add_argument("--format", choices=["markdown", "csv"], default="markdown", help="output format (default: markdown)")
    cv.set_defaults(func=cmd_coverage)

    ig = sub.add_parser(
        "ingest",
        help="add curated model records (JSON lines) to every table at once: facts, architecture, classes, lineage, citations, gaps, review",
        description="Turn model records (one JSON object a line; format in CONTRIBUTING.md) into rows of every table, writing all files or none. "
        "An update record fills empty facts of an existing model and never overwrites one: a differing value is reported as a conflict "
        "(exit 1) for a person to settle. Run fmt and validate afterwards.",
    )
    ig.add_argument("records", nargs="+", help="JSON-lines files of model records")
    ig.add_argument("--sources", nargs="*", default=[], help="JSON-lines files of new sources the records cite")
    ig.add_argument("--reviewer", required=True, help="handle recorded on the review of each record (yours, or model-atlas-curators)")
    ig.add_argument("--date", type=_as_of, default=None, help="date of the reviews and source accesses (default: today's date in UTC)")
    ig.add_argument("--dry-run", action="store_true", help="report what would be added; write nothing")
    _add_root(ig)
    ig.set_defaults(func=cmd_ingest)

    si = sub.add_parser(
        "site",
        help="write a static catalog site (pages, charts, search) from a built release",
        description="Render the site from a release's DuckDB file, descriptor and checksums, never from data/, so what people browse is what "
        "they download. The output works from file:// and any static host.",
    )
    si.add_argument("--release", default=None, help="release directory (default: the newest under dist/)")
    si.add_argument("--out", default="site", help="directory to write (replaced whole; default: site)")
    si.set_defaults(func=cmd_site)

    fc = sub.add_parser(
        "from-config",
        help="read a published config.json or params.json into one candidate ingest record (architecture, context length, citations)",
        description="Print one model record (a JSON line in the ingest format) with the architecture facts and context length the file states, "
        "each cited to --source-id at '<prefix> <key>'. Keys the file does not state stay out; notes on what was left out go to stderr. "
        "Exit 0 with a record, 1 when the file states none of the keys read, 2 when it cannot be read.",
    )
    fc.add_argument("config", help="the model's config.json (Hugging Face style) or params.json (Meta, Mistral)")
    fc.add_argument("--model-id", required=True, help="the atlas model_id the record describes")
    fc.add_argument("--source-id", required=True, help="the source_id of the page that publishes the file (a model card or repository)")
    fc.add_argument("--locator-prefix", default=None, metavar="TEXT", help="text before each key name in the locators (default: the file's name)")
    fc.add_argument("--update", action="store_true", help='mark the record "update": true, to fill an existing model\'s empty facts')
    fc.set_defaults(func=cmd_from_config)

    cc = sub.add_parser(
        "crosscheck",
        help="compare the atlas with another catalog's export (models.dev, LiteLLM or CSV) and list disagreements as Markdown",
        description="Match the export's entries to atlas models by normalised id or name (or an --aliases file), compare the facts both state "
        "and print each disagreement with whether the atlas value cites a primary source. Unmatched entries on either side are counted. "
        "Exit 0 with no disagreement, 1 with some, 2 when a file or option cannot be used.",
    )
    cc.add_argument("export", help="the other catalog's export file: models.dev JSON records, LiteLLM's model map, or a CSV with a header")
    cc.add_argument("--format", choices=["csv", "json"], default=None, help="the export's format (default: from the file's extension)")
    cc.add_argument("--aliases", default=None, metavar="FILE", help="CSV with header other_id,model_id (or a JSON object) for ids that do not match by name")
    cc.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="CSV only: the column holding an atlas field (id and name match models); repeat for each",
    )
    cc.add_argument("--list-unmatched", action="store_true", help="list the unmatched ids on both sides under the counts (candidates to add or alias)")
    _add_root(cc)
    cc.set_defaults(func=cmd_crosscheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; nothing was left half-written", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        raise  # the reader went away (model-atlas validate | head): run() ends quietly
    except Exception as exc:  # the last line of defence: a message, never a traceback
        if os.environ.get("MODEL_ATLAS_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}\n\nThis is a bug in model-atlas, not in your data. "
            "Please report it with the command you ran (set MODEL_ATLAS_DEBUG=1 to see the traceback).",
            file=sys.stderr,
        )
        return EXIT_USAGE


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process ended by SIGPIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail a second time and print a warning."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def run() -> None:
    """The console script. A reader that closes the pipe early (model-atlas validate | head -1) ends the
    command quietly with the SIGPIPE exit status, like any Unix tool, for every command. SIGTERM ends
    it through Python's exit path, so a build or site removes its staging directory as on Ctrl-C."""
    import signal

    def terminated(signum, frame):
        raise SystemExit(128 + signal.SIGTERM)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, terminated)
    try:
        code = main()
        sys.stdout.flush()  # output still buffered is written here, where a closed pipe can be caught
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_BROKEN_PIPE
    sys.exit(code)


if __name__ == "__main__":
    run()
