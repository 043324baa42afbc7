"""ingest: turn curated model records (JSON lines) into rows of every table, all tables or none.

One record describes one model (or family) with its facts, architecture, classes, lineage, the
citation of each fact, the facts it checked and found unpublished, and a review. `"update": true`
adds facts to an existing row instead (it never overwrites a stated value: a differing value is
reported as a conflict for a person to settle). The record format is documented in CONTRIBUTING.md.
Nothing is validated here beyond the record's shape: run `model-atlas validate` afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipelines.contrib.fmt import canonical_text, read_rows, write_files_atomic
from pipelines.package.descriptor import Package
from pipelines.package.files import INT64_MAX, INT64_MIN, json_size_problem, read_text_limited, strict_json

ARCH_PREFIX = "architecture."
SKIPPED_CLASS_PREFIX = "scale-"  # size bands are derived by the release, never written


class IngestError(Exception):
    pass


@dataclass
class IngestReport:
    added: dict[str, int] = field(default_factory=dict)
    updated: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{table}: {n} row(s) added" for table, n in sorted(self.added.items()) if n]
        lines += [f"filled: {u}" for u in self.updated]
        lines += [f"conflict (not changed): {c}" for c in self.conflicts]
        lines += [f"skipped: {s}" for s in self.skipped]
        return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    return str(value)


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def read_records(path: Path) -> list[dict]:
    """JSON objects, one a line; a located error for a line that is not one."""
    records = []
    try:
        text = read_text_limited(path)
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: byte {exc.start} is not UTF-8") from None
    problem = json_size_problem(text)
    if problem:
        raise IngestError(f"{path}: {problem}; split the records into several files")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = strict_json(line)  # no repeated key, NaN, Infinity or overflowing number (SECURITY.md)
        except json.JSONDecodeError as exc:
            raise IngestError(f"{path}:{n}: not a JSON object: {exc.msg}") from None
        except RecursionError:
            raise IngestError(f"{path}:{n}: JSON nested too deeply") from None
        except ValueError as exc:  # a number too long for Python to convert
            raise IngestError(f"{path}:{n}: {exc}") from None
        if not isinstance(rec, dict):
            raise IngestError(f"{path}:{n}: not a JSON object")
        rec["__where"] = f"{path}:{n}"
        records.append(rec)
    return records


class Tables:
    """The package's rows as lists of dicts, with the keys already present."""

    def __init__(self, pkg: Package):
        self.pkg = pkg
        self.rows: dict[str, list[dict]] = {}
        self.keys: dict[str, set] = {}
        self.added: dict[str, int] = {}
        for name, table in pkg.tables.items():
            raw, problem = read_rows(pkg.root / table.path, table)
            if raw is None:
                raise IngestError(f"{table.path}: {problem}; run model-atlas validate and fix it first")
            rows = [dict(zip(table.field_names, r, strict=True)) for r in raw]
            self.rows[name] = rows
            self.keys[name] = {self.key(name, r) for r in rows}

    def key(self, name: str, row: dict) -> tuple:
        return tuple(row.get(k, "") for k in self.pkg.table(name).primary_key)

    def add(self, name: str, row: dict) -> bool:
        table = self.pkg.table(name)
        row = {f: _cell(row.get(f)) for f in table.field_names}
        k = self.key(name, row)
        if k in self.keys[name]:
            return False
        self.keys[name].add(k)
        self.rows[name].append(row)
        self.added[name] = self.added.get(name, 0) + 1
        return True

    def drop_gaps(self, table: str, row_id: str, fields: tuple[str, ...]) -> None:
        """Remove the fact_gaps rows a newly stated fact makes wrong (validate's gap-but-stated rule)."""
        gone = [r for r in self.rows["fact_gaps"] if r["table_name"] == table and r["row_id"] == row_id and r["field"] in fields]
        if gone:
            self.rows["fact_gaps"] = [r for r in self.rows["fact_gaps"] if r not in gone]
            self.keys["fact_gaps"] -= {self.key("fact_gaps", r) for r in gone}
            self.added["fact_gaps"] = self.added.get("fact_gaps", 0)  # mark the table for rewriting

    def find(self, name: str, key: str) -> dict | None:
        for r in self.rows[name]:
            if self.key(name, r) == (key,):
                return r
        return None

    def texts(self) -> dict[Path, str]:
        out = {}
        for name, _n in self.added.items():
            table = self.pkg.table(name)
            rows = [[r[f] for f in table.field_names] for r in self.rows[name]]
            out[self.pkg.root / table.path] = canonical_text(rows, table)
        return out


def _fact_fields(pkg: Package, table: str) -> list[str]:
    return [f.name for f in pkg.table(table).fields if f.fact]


def _int64(value) -> bool:
    """A JSON whole number (or a string of digits) that a 64-bit integer column holds."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return False
    if isinstance(value, str):
        if not re.fullmatch(r"[+-]?[0-9]{1,19}", value):  # ASCII digits only, no spaces: written as given
            return False
        value = int(value)
    return INT64_MIN <= value <= INT64_MAX


EXTRA_KEYS = frozenset(
    {"update", "architecture", "classes", "relations", "citations", "unpublished", "unverified", "not-applicable", "confidence", "note", "__where"}
)
IDENTITY_FIELDS = ("name", "organization", "kind", "family_id")


def _split_field(name: str) -> tuple[str, str]:
    return ("architectures", name[len(ARCH_PREFIX) :]) if name.startswith(ARCH_PREFIX) else ("models", name)


def ingest(pkg: Package, records: list[dict], sources: list[dict], reviewer: str, today: date, write: bool = True) -> IngestReport:
    """Add the records' rows to every table; write them all at once, or nothing when a record is unusable."""
    t = Tables(pkg)
    report = IngestReport()
    for s in sources:
        where = s.pop("__where", "")
        existing = t.find("sources", s.get("source_id", ""))
        if existing:
            if existing.get("url") != (s.get("url") or ""):
                report.conflicts.append(f"{where}: source {s.get('source_id')} exists with another url ({existing.get('url')})")
            continue
        s.setdefault("accessed", today.isoformat())
        if s.get("published") and len(str(s["published"])) != 10:
            report.skipped.append(f"{where}: published {s['published']!r} of {s.get('source_id')} is not a full date; left empty")
            s["published"] = None
        t.add("sources", {**s, "title": _short(s.get("title", ""), 300)})
    model_facts = _fact_fields(pkg, "models")
    arch_fields = [f for f in pkg.table("architectures").field_names if f != "model_id"]
    review_ids = {r["review_id"] for r in t.rows["reviews"]}
    record_keys = set(pkg.table("models").field_names) | EXTRA_KEYS
    for rec in records:
        where = rec.get("__where", "")
        mid = rec.get("model_id")
        if not isinstance(mid, str) or not mid:
            raise IngestError(f"{where}: the record has no model_id (a string)")
        for key, kind in (
            ("classes", list),
            ("relations", list),
            ("citations", dict),
            ("architecture", dict),
            ("unpublished", list),
            ("unverified", list),
            ("not-applicable", list),
        ):
            value = rec.get(key)
            if value is not None and not isinstance(value, kind):
                raise IngestError(f"{where}: {key} must be a JSON {'list' if kind is list else 'object'}")
        for key in ("classes", "unpublished", "unverified", "not-applicable"):
            if any(not isinstance(v, str) for v in rec.get(key) or []):
                raise IngestError(f"{where}: every item of {key} must be a string")
        if any(not isinstance(r, dict) for r in rec.get("relations") or []):
            raise IngestError(f"{where}: every item of relations must be a JSON object")
        for table_name, values in (("models", rec), ("architectures", rec.get("architecture") or {})):
            for f in pkg.table(table_name).fields:
                v = values.get(f.name)
                if f.type == "integer" and v is not None and not _int64(v):
                    shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:40] + "..."
                    raise IngestError(f"{where}: {f.name} is {shown}, not a whole number a 64-bit integer column holds")
        unknown = sorted(k for k in rec if k not in record_keys)
        if unknown:
            raise IngestError(
                f"{where}: unknown key(s) {', '.join(repr(k)[:40] for k in unknown[:5])}; a record holds model fields and {', '.join(sorted(EXTRA_KEYS))}"
            )
        conflicts_before = len(report.conflicts)
        current = t.find("models", mid)
        if rec.get("update"):
            if current is None:
                raise IngestError(f"{where}: update of {mid}, which is not in models")
            filled = []
            for f in model_facts:
                value = _cell(rec.get(f))
                if not value:
                    continue
                if not current.get(f):
                    current[f] = value
                    filled.append(f)
                    t.added["models"] = t.added.get("models", 0)  # mark the table for rewriting
                    t.drop_gaps("models", mid, (f,))
                elif current[f] != value:
                    report.conflicts.append(f"{where}: {mid}.{f} is {current[f]!r}, the record says {value!r}")
            for f in IDENTITY_FIELDS:  # an update never renames or moves a model; a different value is a conflict to look at
                value = _cell(rec.get(f))
                if value and value != current.get(f):
                    report.conflicts.append(f"{where}: {mid}.{f} is {current.get(f)!r}, the record says {value!r} (an update leaves it unchanged)")
            if filled:
                report.updated.append(f"{mid}: {', '.join(filled)}")
        else:
            if current is not None:
                raise IngestError(f"{where}: {mid} is already in models; send an update record instead")
            t.add("models", {**rec, "summary": _short(rec.get("summary", ""), 1200)})
        arch = {k: v for k, v in (rec.get("architecture") or {}).items() if k in arch_fields and v is not None}
        if arch:
            existing = t.find("architectures", mid)
            if existing is None:
                t.add("architectures", {"model_id": mid, **arch})
                t.drop_gaps("architectures", mid, ("*", *arch))
            else:
                for k, v in arch.items():
                    if not existing.get(k):
                        existing[k] = _cell(v)
                        t.added["architectures"] = t.added.get("architectures", 0)
                        t.drop_gaps("architectures", mid, (k,))
                    elif existing[k] != _cell(v):
                        report.conflicts.append(f"{where}: architecture of {mid}.{k} is {existing[k]!r}, the record says {v!r}")
        for cls in rec.get("classes") or []:
            if cls.startswith(SKIPPED_CLASS_PREFIX):
                report.skipped.append(f"{mid}: class {cls} (size bands are derived)")
                continue
            t.add("model_classes", {"model_id": mid, "class_id": cls})
        for rel in rec.get("relations") or []:
            t.add(
                "model_relations",
                {
                    "model_id": mid,
                    "relation": rel.get("relation"),
                    "target_id": rel.get("target_id"),
                    "source_id": rel.get("source_id"),
                    "locator": _short(rel.get("locator") or "", 200),
                },
            )
        for name, cite in (rec.get("citations") or {}).items():
            if not isinstance(cite, dict) or not cite.get("source_id"):
                report.skipped.append(f"{where}: citation of {name} without a source_id")
                continue
            table, fname = ("models", "*") if name == "*" else _split_field(name)
            if fname != "*" and fname not in pkg.table(table).field_names:
                report.skipped.append(f"{where}: citation of unknown field {name}")
                continue
            t.add(
                "citations",
                {"table_name": table, "row_id": mid, "field": fname, "source_id": cite["source_id"], "locator": _short(cite.get("locator") or "", 200)},
            )
        for reason in ("unpublished", "unverified", "not-applicable"):
            for name in rec.get(reason) or []:
                table, fname = ("architectures", "*") if name == "architecture" else _split_field(name)
                if fname != "*" and fname not in pkg.table(table).field_names:
                    report.skipped.append(f"{where}: {reason} names unknown field {name}")
                    continue
                row = t.find(table, mid)
                if row is not None and (fname == "*" or row.get(fname)):
                    continue  # stated after all
                t.add("fact_gaps", {"table_name": table, "row_id": mid, "field": fname, "reason": reason, "note": ""})
        if len(report.conflicts) > conflicts_before:
            # a record that disagrees with the data was not confirmed: no review until a person settles it
            report.skipped.append(f"{where}: no review written for {mid}, which has conflicts to settle")
            continue
        review_id = f"rev-{mid}-{today.isoformat()}"
        n = 2
        while review_id in review_ids:
            review_id = f"rev-{mid}-{today.isoformat()}-{n}"
            n += 1
        review_ids.add(review_id)
        t.add(
            "reviews",
            {
                "review_id": review_id,
                "table_name": "models",
                "row_id": mid,
                "reviewer": reviewer,
                "reviewed_on": today.isoformat(),
                "verdict": "confirmed",
                "confidence": rec.get("confidence") or "medium",
                "note": _short(rec.get("note") or "Checked the stated facts against the cited primary sources.", 1200),
            },
        )
    report.added = {k: v for k, v in t.added.items()}
    if write:
        write_files_atomic(t.texts())
    return report


def ingest_files(pkg: Package, model_files: list[Path], source_files: list[Path], reviewer: str, today: date, write: bool = True) -> IngestReport:
    records = [r for p in model_files for r in read_records(p)]
    sources = [r for p in source_files for r in read_records(p)]
    return ingest(pkg, records, sources, reviewer, today, write)


def rows_as_csv(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
