"""The model-atlas command line. Exit codes: 0 ok, 1 findings of severity error, 2 usage or unreadable package."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None


def cmd_validate(args) -> int:
    from pipelines.findings import FORMATS
    from pipelines.package import PackageError
    from pipelines.validate import validate

    try:
        report = validate(args.root, args.as_of)
    except PackageError as exc:
        print(FORMATS[args.format](exc.findings, "datapackage.json"), file=sys.stdout if args.format != "human" else sys.stderr)
        return EXIT_USAGE
    print(FORMATS[args.format](report.findings, report.checked))
    return EXIT_FINDINGS if report.errors else EXIT_OK


def cmd_fmt(args) -> int:
    from pipelines.package import PackageError, load_package
    from pipelines.fmt import format_package

    try:
        pkg = load_package(args.root)
    except PackageError as exc:
        for f in exc.findings:
            print(f"{f.file}:{f.line}: error[{f.code}] {f.message}", file=sys.stderr)
        return EXIT_USAGE
    changed, skipped = format_package(pkg, check=args.check)
    for s in skipped:
        print(f"skipped {s} (run model-atlas validate for details)", file=sys.stderr)
    verb = "would reformat" if args.check else "reformatted"
    for c in changed:
        print(f"{verb} {c}")
    print(f"{len(changed)} file(s) {verb}, {len(pkg.tables) - len(changed) - len(skipped)} already canonical, {len(skipped)} skipped")
    return EXIT_FINDINGS if (args.check and changed) or skipped else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-atlas", description="Validate, build and query the Model Atlas dataset.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('pipelines').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    v = sub.add_parser("validate", help="check data/ against the schemas and every rule; print all findings",
                       description="Check every table: file hygiene, Table Schema, keys, row rules, cross-table rules, staleness and safety. "
                                   "Exit 0 when there is no error (warnings allowed), 1 with errors, 2 when the package cannot be read.")
    v.add_argument("--root", type=Path, default=Path("."), help="repository root holding datapackage.json (default: .)")
    v.add_argument("--as-of", type=_as_of, default=None, help="evaluate dates and staleness at this date, YYYY-MM-DD (default: today)")
    v.add_argument("--format", choices=["human", "json", "github"], default="human", help="output format (default: human)")
    v.set_defaults(func=cmd_validate)

    f = sub.add_parser("fmt", help="rewrite data/*.csv in canonical form (sorted by key, trimmed, LF, minimal quoting)",
                       description="Put every CSV into canonical form without changing a value or dropping a row. "
                                   "With --check, change nothing and exit 1 if any file would change.")
    f.add_argument("--root", type=Path, default=Path("."), help="repository root holding datapackage.json (default: .)")
    f.add_argument("--check", action="store_true", help="only report files that are not canonical; exit 1 if any")
    f.set_defaults(func=cmd_fmt)
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
    return args.func(args)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
