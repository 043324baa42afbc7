"""new: template rows for a model, class, source or review, with a slugified id and today's date."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from datetime import date
from pathlib import Path

from pipelines.checks.placeholders import template_value
from pipelines.contrib.fmt import write_files_atomic
from pipelines.package import chars
from pipelines.package.descriptor import load_package


class NewRowError(Exception):
    pass


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by hyphens: 'Llama 3.1 405B' -> 'llama-3-1-405b'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _existing(path: Path, column: str) -> set[str]:
    if not path.is_file():
        return set()
    with open(path, newline="", encoding="utf-8") as fh:
        return {row.get(column, "") for row in csv.DictReader(fh)}


def templates(what: str, row_id: str, name: str, today: str) -> dict[str, list[dict]]:
    """The rows to add, per table: every required field filled with a placeholder to replace (pipelines/checks/placeholders.py)."""
    review = {
        "review_id": f"rev-{row_id}-{today}",
        "reviewer": template_value("reviews", "reviewer"),
        "reviewed_on": today,
        "verdict": "confirmed",
        "confidence": "medium",
        "note": template_value("reviews", "note"),
    }
    if what == "model":
        return {
            "models": [
                {
                    "model_id": row_id,
                    "name": name,
                    "kind": "model",
                    "organization": template_value("models", "organization"),
                    "summary": template_value("models", "summary"),
                }
            ],
            "model_classes": [{"model_id": row_id, "class_id": "decoder-only"}],
            "citations": [
                {
                    "table_name": "models",
                    "row_id": row_id,
                    "field": "*",
                    "source_id": template_value("citations", "source_id"),
                    "locator": template_value("citations", "locator"),
                }
            ],
            "reviews": [{**review, "table_name": "models", "row_id": row_id}],
        }
    if what == "class":
        return {
            "classes": [{"class_id": row_id, "name": name, "facet": "capability", "summary": template_value("classes", "summary")}],
            "reviews": [{**review, "table_name": "classes", "row_id": row_id}],
        }
    if what == "source":
        return {
            "sources": [
                {
                    "source_id": row_id,
                    "url": template_value("sources", "url"),
                    "title": name,
                    "publisher": template_value("sources", "publisher"),
                    "kind": "paper",
                    "tier": "primary",
                    "accessed": today,
                }
            ]
        }
    table, _, target = name.partition("/")
    if table not in ("models", "classes") or not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", target):
        raise NewRowError(
            f"{name[:80]!r} is not TABLE/ROW_ID: for a review, --name is models/<id> or classes/<id> with an existing id "
            "(lower-case letters, digits and single hyphens; no other / or \\), for example models/mixtral-8x7b"
        )
    return {"reviews": [{**review, "review_id": f"rev-{target}-{today}", "table_name": table, "row_id": target}]}


def new_rows(root: Path, what: str, row_id: str | None, name: str, append: bool, today: date) -> str:
    if not name or chars.refused_chars(name) or "\n" in name or chars.has_edge_whitespace(name) or len(name) > 200:
        raise NewRowError(
            f"{chars.for_terminal(name[:80])!r} is not a usable --name: one line of visible text without surrounding spaces, at most 200 characters"
        )
    pkg = load_package(root)
    row_id = row_id or slugify(name if what != "review" else name.partition("/")[2])
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", row_id or ""):
        raise NewRowError(f"{row_id!r} is not a valid id: use lower-case letters, digits and single hyphens")
    rows = templates(what, row_id, name, today.isoformat())
    key_table = next(iter(rows))
    pk = pkg.table(key_table).primary_key[0]
    for t, new in rows.items():
        existing = _existing(pkg.root / pkg.table(t).path, pkg.table(t).primary_key[0])
        for r in new:
            key = r[pkg.table(t).primary_key[0]]
            if len(pkg.table(t).primary_key) == 1 and key in existing:
                raise NewRowError(f'{pk if t == key_table else pkg.table(t).primary_key[0]} "{key}" already exists in {pkg.table(t).path}; choose another --id')
    out = []
    pending = {}
    for t, new in rows.items():
        table = pkg.table(t)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in new:
            w.writerow([r.get(f, "") for f in table.field_names])
        if append:
            path = pkg.root / table.path
            text = path.read_text(encoding="utf-8")
            if not text.endswith("\n"):
                text += "\n"
            pending[path] = text + buf.getvalue()
            out.append(f"appended {len(new)} row(s) to {table.path}")
        else:
            out.append(f"# {table.path}\n{buf.getvalue().rstrip()}")
    if pending:
        write_files_atomic(pending)  # all tables or none
    if append:
        out.append("now replace the placeholders (validate reports each one left as error[placeholder]), then run: model-atlas fmt && model-atlas validate")
    return "\n".join(out) + "\n"
