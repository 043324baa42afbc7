"""Load the Data Package descriptor and its Table Schemas: the one description of the data.

Everything else (SQL checks, DuckDB DDL, Parquet types, docs) is derived from the objects here.
Loading never opens a data file; paths are checked before anything is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pipelines.package.findings import Finding

DESCRIPTOR = "datapackage.json"
POLICY_KEY = "x-model-atlas"


@dataclass(frozen=True)
class Field:
    """One column of a table, as its Table Schema declares it."""

    name: str
    type: str
    description: str
    constraints: dict
    delimiter: str = "|"
    fact: bool = False  # x-fact: every value needs a primary-source citation
    date_precision: tuple[str, ...] = ()  # x-date-precision: text holding an ISO date at these precisions (day, month)
    ext: tuple = ()  # the field's project extension keys (x-...), as sorted (key, value) pairs

    def x(self, key: str, default=None):
        """A project extension of the field, such as x-item-enum or x-applies-to."""
        return dict(self.ext).get(key, default)

    @property
    def item_enum(self) -> list | None:
        """For a list field: the values each item may take."""
        return self.x("x-item-enum")

    @property
    def hint(self) -> str:
        """x-hint: the field's pattern in plain words, printed instead of the regular expression."""
        return str(self.x("x-hint") or "")

    @property
    def required(self) -> bool:
        return bool(self.constraints.get("required"))

    @property
    def enum(self) -> list | None:
        return self.constraints.get("enum")

    def duckdb_type(self) -> str:
        return {
            "string": "VARCHAR",
            "integer": "BIGINT",
            "number": "DOUBLE",
            "boolean": "BOOLEAN",
            "date": "DATE",
            "list": "VARCHAR[]",
        }[self.type]


@dataclass(frozen=True)
class Table:
    """One resource of the package: a CSV file and its schema."""

    name: str
    path: str
    schema_path: str
    title: str
    description: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[dict, ...]
    review_from: tuple = ()  # x-review-from: where a row takes its confidence from, as sorted (key, value) pairs
    ext: dict = field(default_factory=dict, compare=False, hash=False)  # the schema's table-level project extensions (x-...)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def fk_target(self, fk: dict) -> str:
        """The table a foreign key points at (itself when the reference names no resource)."""
        return fk["reference"].get("resource") or self.name

    @property
    def references(self) -> set[str]:
        """Other tables this table's foreign keys point at."""
        return {self.fk_target(fk) for fk in self.foreign_keys} - {self.name}

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass
class Package:
    """The descriptor, its tables in order, and the project policy block."""

    root: Path
    descriptor: dict
    tables: dict[str, Table]
    policy: dict
    findings: list[Finding] = field(default_factory=list)

    def table(self, name: str) -> Table:
        return self.tables[name]


def _frozen(value):
    """A hashable copy of a JSON value (lists become tuples)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


class PackageError(Exception):
    """The descriptor cannot be used at all (exit code 2)."""

    def __init__(self, findings: list[Finding]):
        super().__init__("; ".join(f.message for f in findings))
        self.findings = findings


_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def safe_relative_path(root: Path, raw: object, what: str, where: str) -> tuple[Path | None, Finding | None]:
    """Resolve a descriptor path, refusing anything that could leave the repository."""
    if not isinstance(raw, str) or not raw:
        return None, Finding(DESCRIPTOR, 0, where, "descriptor-path", f"{what} must be a non-empty relative path, got {raw!r:.80}")
    if _URL.match(raw) or raw.startswith(("/", "\\")) or "\\" in raw or "\x00" in raw:
        return None, Finding(DESCRIPTOR, 0, where, "path-outside-package", f"{what} {raw!r:.120} is not a relative path inside the repository")
    parts = PurePosixPath(raw).parts
    if ".." in parts:
        return None, Finding(DESCRIPTOR, 0, where, "path-outside-package", f"{what} {raw!r:.120} climbs out with '..'")
    if any(p.startswith(".") for p in parts):  # .git/config, .github/, .venv/: never package data
        return None, Finding(DESCRIPTOR, 0, where, "path-outside-package", f"{what} {raw!r:.120} names a hidden file or directory")
    suffix = ".json" if where.endswith("/schema") else ".csv"
    if not raw.endswith(suffix):
        return None, Finding(DESCRIPTOR, 0, where, "descriptor-path", f"{what} {raw!r:.120} must be a {suffix} file")
    try:
        resolved = (root / raw).resolve()
        resolved.relative_to(root.resolve())
    except (RuntimeError, OSError):
        return None, Finding(DESCRIPTOR, 0, where, "path-outside-package", f"{what} {raw!r:.120} cannot be resolved (a symlink loop?)")
    except ValueError:
        return None, Finding(DESCRIPTOR, 0, where, "path-outside-package", f"{what} {raw!r:.120} resolves outside the repository (through a symlink)")
    return root / raw, None


def load_package(root: Path | str = ".") -> Package:
    """Read datapackage.json and every schema it names; raise PackageError if unusable.

    Both are checked against the JSON Schema profiles in schemas/profiles/ first, then their names
    and references against each other; any problem is a finding with a JSON Pointer (exit 2).
    """
    from pipelines.package import profile

    root = Path(root)
    path = root / DESCRIPTOR
    if not path.is_file():
        raise PackageError([Finding(DESCRIPTOR, 0, "", "descriptor-missing", f"no {DESCRIPTOR} in {root}")])
    descriptor, findings = profile.read_json(path, DESCRIPTOR)
    if findings:
        raise PackageError(findings)
    findings = profile.profile_findings(descriptor, "datapackage.json", DESCRIPTOR) or profile.text_findings(descriptor, DESCRIPTOR)
    if findings:
        raise PackageError(findings)
    findings = profile.descriptor_structure_findings(descriptor, DESCRIPTOR)

    schemas: dict[str, tuple[str, dict]] = {}
    for i, res in enumerate(descriptor["resources"]):
        where = profile.pointer(("resources", i))
        data_path, bad = safe_relative_path(root, res["path"], f"resource {res['name']!r} path", f"{where}/path")
        if bad:
            findings.append(bad)
        schema_ref = res["schema"]
        schema_path, bad_schema = safe_relative_path(root, schema_ref, f"resource {res['name']!r} schema", f"{where}/schema")
        if bad_schema:
            findings.append(bad_schema)
        if bad or bad_schema:
            continue
        if not schema_path.is_file():
            findings.append(
                Finding(DESCRIPTOR, 0, f"{where}/schema", "schema-missing", f"schema file {schema_ref!r} of resource {res['name']!r} does not exist")
            )
            continue
        schema, bad_json = profile.read_json(schema_path, schema_ref)
        if not bad_json:
            bad_json = profile.profile_findings(schema, "tableschema.json", schema_ref) or profile.text_findings(schema, schema_ref)
        if not bad_json:
            bad_json = profile.schema_structure_findings(schema, schema_ref)
        findings += bad_json
        if not bad_json:
            schemas[res["name"]] = (schema_ref, schema)
    if findings:
        raise PackageError(findings)
    findings = profile.cross_schema_findings(schemas) + profile.derived_rows_findings(schemas)
    if findings:
        raise PackageError(findings)

    tables: dict[str, Table] = {}
    for res in descriptor["resources"]:
        schema_ref, schema = schemas[res["name"]]
        fields = tuple(
            Field(
                name=f["name"],
                type=f["type"],
                description=f.get("description", ""),
                constraints=f.get("constraints", {}),
                delimiter=f.get("delimiter", "|"),
                fact=bool(f.get("x-fact")),
                date_precision=tuple(f.get("x-date-precision", ())),
                ext=tuple(sorted((k, _frozen(v)) for k, v in f.items() if k.startswith("x-"))),
            )
            for f in schema["fields"]
        )
        pk = schema.get("primaryKey", [])
        fks = tuple(
            {
                "fields": [fk["fields"]] if isinstance(fk["fields"], str) else list(fk["fields"]),
                "reference": {
                    "resource": fk["reference"].get("resource") or res["name"],
                    "fields": [fk["reference"]["fields"]] if isinstance(fk["reference"]["fields"], str) else list(fk["reference"]["fields"]),
                },
            }
            for fk in schema.get("foreignKeys", [])
        )
        tables[res["name"]] = Table(
            name=res["name"],
            path=res["path"],
            schema_path=schema_ref,
            title=res.get("title", res["name"]),
            description=res.get("description", ""),
            fields=fields,
            primary_key=tuple([pk] if isinstance(pk, str) else pk),
            foreign_keys=fks,
            review_from=tuple(sorted(schema.get("x-review-from", {}).items())),
            ext={k: v for k, v in schema.items() if k.startswith("x-")},
        )
    return Package(root=root, descriptor=descriptor, tables=tables, policy=descriptor.get(POLICY_KEY, {}), findings=[])
