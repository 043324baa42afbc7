"""crosscheck: compare the atlas's model facts with another catalog's export and list the disagreements.

Reads one export file (models.dev records, a LiteLLM model map, or a CSV with a header), matches its
entries to atlas rows by normalised id or name (or an alias file), compares the facts both state and
returns the disagreements for a person to review. Nothing is written: the other catalog is a lead,
never a source; a correction still needs a primary citation.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.contrib.fmt import read_rows
from pipelines.package.chars import for_markdown
from pipelines.package.descriptor import Package
from pipelines.package.files import JSONInputError, parse_json_input, read_text_limited

# models.dev record: dotted key path -> atlas field
MODELS_DEV_FIELDS = {
    "limit.context": "context_length",
    "limit.output": "max_output_tokens",
    "release_date": "release_date",
    "knowledge": "knowledge_cutoff",
    "open_weights": "open_weights",
    "reasoning": "reasoning",
    "tool_call": "tool_calling",
}
# LiteLLM model map entry: key -> atlas field. max_tokens is LiteLLM's legacy key (the output limit when the
# provider gives one, else the input limit), so it is only compared when max_output_tokens is absent, and labelled.
LITELLM_FIELDS = {"max_input_tokens": "context_length", "max_output_tokens": "max_output_tokens"}
LITELLM_LEGACY = "max_tokens"
LITELLM_SKIP = {"sample_spec"}
ID_FIELDS = ("id", "name")
DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


class CrosscheckError(Exception):
    """An export, alias file or option that cannot be used; the message names the file, the position and a fix."""


@dataclass
class Entry:
    """One model of the other catalog: its id, name and stated values {field: (raw value, where, label)}."""

    other_id: str
    name: str
    where: str
    values: dict[str, tuple[object, str, str]] = field(default_factory=dict)


@dataclass
class Disagreement:
    model_id: str
    other_id: str
    field: str
    atlas_value: str
    other_value: str
    primary: str


@dataclass
class Result:
    disagreements: list[Disagreement]
    atlas_rows: int
    atlas_unmatched: list[str]
    entries: int
    entries_unmatched: list[str]
    atlas_lacks: int
    agreed: int
    notes: list[str]


def normalise(text: str) -> str:
    """Lower case, provider prefix dropped (openai/gpt-4o -> gpt-4o), every run of other characters one hyphen."""
    text = str(text).strip().lower().rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _json_path(parts: list) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f"[{json.dumps(p)}]" if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) else f".{p}" for p in parts)


def _dig(obj: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def read_json_export(path: Path, text: str) -> list[Entry]:
    """models.dev records (a list, one provider's {"models": ...}, or the whole api.json) or a LiteLLM map."""
    try:
        data = parse_json_input(path, text, "a catalog export", "export the file again, or give --format csv for a CSV file")
    except JSONInputError as exc:
        raise CrosscheckError(str(exc)) from None
    if isinstance(data, list):
        return _models_dev(path, [(i, r) for i, r in enumerate(data)], [], "")
    if not isinstance(data, dict):
        raise CrosscheckError(
            f"{path}: the top level is a JSON {type(data).__name__}\n\nfix: give a list of models.dev records or a LiteLLM object keyed by model name"
        )
    if isinstance(data.get("models"), (dict, list)):
        return _models_dev(path, _items(data["models"]), ["models"], "")
    providers = [(k, v) for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("models"), (dict, list))]
    if providers:
        entries = []
        for key, provider in providers:
            entries += _models_dev(path, _items(provider["models"]), [key, "models"], f"{key}/")
        return entries
    return _litellm(path, data)


def _items(models) -> list[tuple]:
    return list(models.items()) if isinstance(models, dict) else list(enumerate(models))


def _models_dev(path: Path, items: list[tuple], parents: list, prefix: str) -> list[Entry]:
    entries = []
    for key, rec in items:
        where = f"{path}:{_json_path([*parents, key])}"
        if not isinstance(rec, dict):
            raise CrosscheckError(f"{where}: a model record must be a JSON object, not {type(rec).__name__}\n\nfix: export the file again")
        ident = rec.get("id") if isinstance(rec.get("id"), str) else key if isinstance(key, str) else None
        if not ident and not isinstance(rec.get("name"), str):
            raise CrosscheckError(f'{where}: the record has neither an id nor a name\n\nfix: give every record an "id"')
        entry = Entry(prefix + (ident or rec["name"]), rec.get("name") if isinstance(rec.get("name"), str) else "", where)
        for dotted, target in MODELS_DEV_FIELDS.items():
            value = _dig(rec, dotted)
            if value is not None and value != "":
                entry.values[target] = (value, f"{where}.{dotted}", target)
        entries.append(entry)
    return entries


def _litellm(path: Path, data: dict) -> list[Entry]:
    entries = []
    for key, rec in data.items():
        if key in LITELLM_SKIP:
            continue
        where = f"{path}:{_json_path([key])}"
        if not isinstance(rec, dict):
            raise CrosscheckError(
                f"{where}: a LiteLLM entry must be a JSON object, not {type(rec).__name__}\n\nfix: give LiteLLM's model_prices_and_context_window.json, or models.dev records as a list"
            )
        entry = Entry(key, "", where)
        for k, target in LITELLM_FIELDS.items():
            if rec.get(k) is not None:
                entry.values[target] = (rec[k], f"{where}.{k}", target)
        if "max_output_tokens" not in entry.values and rec.get(LITELLM_LEGACY) is not None:
            entry.values["max_output_tokens"] = (rec[LITELLM_LEGACY], f"{where}.{LITELLM_LEGACY}", f"max_output_tokens ({LITELLM_LEGACY})")
        entries.append(entry)
    return entries


def parse_map(pairs: list[str], facts: list[str]) -> dict[str, str]:
    """--map field=column options as {field: column}; id and name are the matching columns."""
    mapping = {}
    for pair in pairs:
        fname, sep, column = pair.partition("=")
        fname, column = fname.strip(), column.strip()
        if not sep or not fname or not column:
            raise CrosscheckError(f'--map {pair!r}: write FIELD=COLUMN, for example --map context_length="Context window"')
        if fname not in (*ID_FIELDS, *facts):
            raise CrosscheckError(f"--map {pair!r}: {fname!r} is not an atlas field; use id, name or one of: {', '.join(facts)}")
        mapping[fname] = column
    return mapping


def _csv_rows(path: Path, text: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text))
    try:
        return list(reader)
    except csv.Error as exc:
        raise CrosscheckError(f"{path}:{reader.line_num}: not readable as CSV: {exc}\n\nfix: save the file as plain UTF-8 CSV") from None


def read_csv_export(path: Path, text: str, mapping: dict[str, str], facts: list[str]) -> list[Entry]:
    """CSV rows; columns named like atlas fields (or id, model_id, name) are used unless --map says otherwise."""
    rows = _csv_rows(path, text)
    if not rows:
        raise CrosscheckError(f"{path}: the file is empty\n\nfix: export the catalog with a header row")
    header = [h.strip() for h in rows[0]]
    columns = {h: i for i, h in enumerate(header)}
    wanted = dict(mapping)
    for fname in (*facts, "name"):
        if fname not in wanted and fname in columns:
            wanted[fname] = fname
    if "id" not in wanted:
        for alt in ("id", "model_id"):
            if alt in columns:
                wanted["id"] = alt
                break
    for fname, column in wanted.items():
        if column not in columns:
            raise CrosscheckError(f"{path}:1: --map {fname}={column}: no column {column!r} in the header\n\nfix: use one of: {', '.join(header)}")
    if "id" not in wanted and "name" not in wanted:
        raise CrosscheckError(f"{path}:1: no column names the models\n\nfix: add --map id=COLUMN (or --map name=COLUMN) with one of: {', '.join(header)}")
    compared = [f for f in wanted if f not in ID_FIELDS]
    if not compared:
        raise CrosscheckError(f'{path}:1: no column holds an atlas fact\n\nfix: add --map FIELD=COLUMN, for example --map context_length="Context window"')
    entries = []
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        cells = {f: (row[columns[c]].strip() if columns[c] < len(row) else "") for f, c in wanted.items()}
        ident, name = cells.get("id", ""), cells.get("name", "")
        if not ident and not name:
            raise CrosscheckError(f"{path}:{n}: the row has no model id or name\n\nfix: fill it in or delete the row")
        entry = Entry(ident or name, name, f"{path}:{n}")
        for f in compared:
            if cells[f]:
                entry.values[f] = (cells[f], f"{path}:{n}:{columns[wanted[f]] + 1}", f)
        entries.append(entry)
    return entries


def read_aliases(path: Path) -> dict[str, str]:
    """other id -> atlas model_id, from a CSV with header other_id,model_id or a JSON object."""
    try:
        text = read_text_limited(path, "utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CrosscheckError(f"{path}: cannot be read ({exc})\n\nfix: give a UTF-8 CSV with header other_id,model_id") from None
    if path.suffix.lower() == ".json":
        try:
            data = parse_json_input(path, text, "an alias file", 'write an object {"other id": "atlas model_id"}')
        except JSONInputError as exc:
            raise CrosscheckError(str(exc)) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise CrosscheckError(f'{path}: an alias file in JSON is one object of strings\n\nfix: write {{"other id": "atlas model_id", ...}}')
        return {k: v for k, v in data.items()}
    rows = _csv_rows(path, text)
    if not rows or [h.strip() for h in rows[0]] != ["other_id", "model_id"]:
        raise CrosscheckError(f"{path}:1: the header must be other_id,model_id\n\nfix: put other_id,model_id on the first line")
    out = {}
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise CrosscheckError(
                f"{path}:{n}: expected two filled cells, other_id,model_id\n\nfix: write the other catalog's id, a comma, and the atlas model_id"
            )
        out[row[0].strip()] = row[1].strip()
    return out


def read_export(path: Path, fmt: str | None, mapping: list[str], facts: list[str]) -> list[Entry]:
    fmt = fmt or {".csv": "csv", ".json": "json"}.get(path.suffix.lower())
    if fmt is None:
        raise CrosscheckError(f"{path}: cannot tell the format from the file name\n\nfix: add --format csv or --format json")
    try:
        text = read_text_limited(path, "utf-8-sig")
    except FileNotFoundError:
        raise CrosscheckError(f"{path}: no such file\n\nfix: give the path of the downloaded export") from None
    except UnicodeDecodeError as exc:
        raise CrosscheckError(f"{path}: byte {exc.start} is not UTF-8\n\nfix: save the export as UTF-8") from None
    except OSError as exc:
        raise CrosscheckError(f"{path}: cannot be read: {exc.strerror}") from None
    if fmt == "csv":
        return read_csv_export(path, text, parse_map(mapping, facts), facts)
    if mapping:
        raise CrosscheckError("--map applies to CSV exports only; a JSON export's keys are mapped by its known format")
    return read_json_export(path, text)


@dataclass
class Atlas:
    rows: dict[str, dict]
    primary: dict[tuple[str, str], str]
    types: dict[str, str]


def load_atlas(pkg: Package) -> Atlas:
    """The models rows and, per (model, field), the best tier of source its citations use."""
    tables = {}
    for name in ("models", "citations", "sources"):
        table = pkg.table(name)
        raw, problem = read_rows(pkg.root / table.path, table)
        if raw is None:
            raise CrosscheckError(f"{table.path}: {problem}\n\nfix: run model-atlas validate and fix the file first")
        tables[name] = [dict(zip(table.field_names, r, strict=True)) for r in raw]
    tier = {s["source_id"]: s["tier"] for s in tables["sources"]}
    primary: dict[tuple[str, str], str] = {}
    for c in tables["citations"]:
        if c["table_name"] != "models":
            continue
        k = (c["row_id"], c["field"])
        level = "yes" if tier.get(c["source_id"]) == "primary" else "secondary only"
        if primary.get(k) != "yes":
            primary[k] = level
    models = pkg.table("models")
    types = {f.name: f.type for f in models.fields if f.fact}
    return Atlas({r["model_id"]: r for r in tables["models"]}, primary, types)


def _int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip().replace(",", "").replace("_", "")
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(str(value).strip().lower())


def _date(value) -> tuple | None:
    m = DATE_RE.match(str(value).strip())
    return tuple(p for p in m.groups() if p) if m else None


def compare(kind: str, atlas_text: str, other, delimiter: str = "|") -> bool | None:
    """True when they agree, False when not, None when the other value cannot be read as that kind."""
    if kind == "integer":
        mine, theirs = _int(atlas_text), _int(other)
    elif kind == "boolean":
        mine, theirs = _bool(atlas_text), _bool(other)
    elif kind == "list":
        items = other if isinstance(other, list) else str(other).split(delimiter)
        mine, theirs = {x.strip().lower() for x in atlas_text.split(delimiter)}, {str(x).strip().lower() for x in items}
    elif _date(atlas_text) is not None:  # release_date, knowledge_cutoff: compare at the precision both give
        mine, theirs = _date(atlas_text), _date(other)
        if theirs is not None:
            n = min(len(mine), len(theirs))
            mine, theirs = mine[:n], theirs[:n]
    else:
        mine, theirs = atlas_text.strip().lower(), str(other).strip().lower()
    if theirs is None:
        return None
    return mine == theirs


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def crosscheck(atlas: Atlas, entries: list[Entry], aliases: dict[str, str], alias_file: str = "aliases") -> Result:
    """Match entries to atlas rows and list every fact both state with different values."""
    for other, mid in aliases.items():
        if mid not in atlas.rows:
            raise CrosscheckError(
                f"{alias_file}: alias {other!r} points at {mid!r}, which is not a model_id in models\n\nfix: correct the model_id or drop the line"
            )
    index: dict[str, str] = {}
    for mid, row in sorted(atlas.rows.items()):
        for key in (normalise(mid), normalise(row.get("name", ""))):
            index.setdefault(key, mid)
    by_norm_alias = {normalise(k): v for k, v in aliases.items()}
    out: list[Disagreement] = []
    notes: list[str] = []
    matched_atlas: set[str] = set()
    unmatched: list[str] = []
    lacks = agreed = 0
    first_seen: dict[tuple, str] = {}
    for e in entries:
        same_entry = (e.other_id, e.name, tuple(sorted((f, repr(v)) for f, (v, _, _) in e.values.items())))
        if same_entry in first_seen:  # an export that lists a model twice with the same values is one claim, not two
            notes.append(f"{e.where}: repeats the entry at {first_seen[same_entry]}; counted once")
            continue
        first_seen[same_entry] = e.where
        mid = (
            aliases.get(e.other_id)
            or by_norm_alias.get(normalise(e.other_id))
            or index.get(normalise(e.other_id))
            or (index.get(normalise(e.name)) if e.name else None)
        )
        if mid is None:
            unmatched.append(e.other_id)
            continue
        matched_atlas.add(mid)
        row = atlas.rows[mid]
        for fname, (value, where, label) in e.values.items():
            kind = atlas.types.get(fname)
            if kind is None:
                continue
            mine = row.get(fname, "")
            if not mine:
                lacks += 1
                continue
            same = compare(kind, mine, value)
            if same is None:
                notes.append(f"{where}: {_shown(value)!r} cannot be read as {kind}; not compared")
            elif same:
                agreed += 1
            else:
                out.append(Disagreement(mid, e.other_id, label, mine, _shown(value), atlas.primary.get((mid, fname), "no citation")))
    out.sort(key=lambda d: (d.model_id, d.field, d.other_id))
    return Result(
        out,
        len(atlas.rows),
        sorted(set(atlas.rows) - matched_atlas),
        len(entries),
        unmatched,
        lacks,
        agreed,
        notes,
    )


def _cell(text: str) -> str:
    return for_markdown(str(text).replace("\n", " "))


def result_markdown(result: Result, export_name: str, list_unmatched: bool = False) -> str:
    lines = [f"## Disagreements with {_cell(export_name)}", ""]
    if result.disagreements:
        lines += [
            "| atlas model_id | other id | field | atlas value | other value | atlas cites a primary source |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            "| " + " | ".join(_cell(x) for x in (d.model_id, d.other_id, d.field, d.atlas_value, d.other_value, d.primary)) + " |" for d in result.disagreements
        ]
    else:
        lines.append("No disagreements.")
    lines += [
        "",
        f"{len(result.disagreements)} disagreement(s), {result.agreed} agreeing fact(s); "
        f"{result.atlas_lacks} fact(s) the export states and the atlas leaves empty.",
        f"Unmatched: {len(result.atlas_unmatched)} of {result.atlas_rows} atlas row(s), "
        f"{len(result.entries_unmatched)} of {result.entries} export entr{'y' if result.entries == 1 else 'ies'} "
        "(an --aliases file matches ids that differ).",
    ]
    if list_unmatched:
        for title, ids in (("Atlas rows with no match", result.atlas_unmatched), ("Export entries with no match", result.entries_unmatched)):
            if ids:
                lines += ["", f"{title}:", ""] + [f"- {_cell(i)}" for i in ids]
    if result.notes:
        lines += ["", "Not compared:", ""] + [f"- {_cell(n)}" for n in result.notes]
    return "\n".join(lines) + "\n"
