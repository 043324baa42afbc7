"""Every fixture in the catalogue, through the real CLI, against its declared findings and a reference engine."""

from __future__ import annotations

import filecmp
import json
import sys
from datetime import date

import pytest
from conftest import AS_OF, DEFECT_NAMES, DEFECTS, FIXTURES, REPO, defect_package, findings_json, valid_package

sys.path.insert(0, str(FIXTURES))
import catalogue  # noqa: E402

from pipelines.checks.reference import comparable, fast_as_frictionless, frictionless_findings, pandera_findings
from pipelines.package.findings import (
    RULES,  # noqa: E402
    Finding,  # noqa: E402
)

# every package here is built from tests/fixtures: no test reads the checkout's data/ (see tests/test_whole_suite.py)
pytestmark = pytest.mark.fixtures_only


def _tuples(report: dict) -> set[tuple]:
    return {(f["file"], f["line"], f["column"], f["code"]) for f in report["findings"]}


def test_catalogue_is_large_enough():
    assert len(DEFECT_NAMES) >= 25


def test_committed_fixtures_match_the_catalogue(tmp_path):
    catalogue.write_catalogue(REPO, tmp_path / "defects")
    cmp = filecmp.dircmp(tmp_path / "defects", DEFECTS)
    stale = []

    def walk(c, prefix=""):
        stale.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files)
        for name, sub in c.subdirs.items():
            walk(sub, prefix + name + "/")

    walk(cmp)
    assert not stale, f"tests/fixtures/defects drifted ({stale[:5]}); regenerate with: python tests/fixtures/catalogue.py"


def test_valid_fixture_is_clean_in_both_engines(tmp_path):
    root = valid_package(tmp_path)
    code, report = findings_json(root)
    assert code == 0, report
    assert report["findings"] == []
    resources = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))["resources"]
    assert f"{len(resources)} tables" in report["checked"] and int(report["checked"].split(", ")[1].split()[0]) > 20
    assert frictionless_findings(root) == []
    assert pandera_findings(root, date.fromisoformat(AS_OF)) == []


@pytest.mark.parametrize("name", DEFECT_NAMES)
def test_defect_gives_exactly_its_findings(name, tmp_path):
    root, meta = defect_package(name, tmp_path)
    code, report = findings_json(root)
    assert _tuples(report) == {tuple(e) for e in meta["expect"]}
    assert code == meta["exit_code"]
    for f in report["findings"]:
        assert f["file"] and f["message"] and f["fix"], f
        assert f["code"] in RULES


REFERENCED = [d.name for d in catalogue.CATALOGUE if d.reference]


@pytest.mark.parametrize("name", REFERENCED)
def test_fast_engine_agrees_with_reference(name, tmp_path):
    root, meta = defect_package(name, tmp_path)
    _, report = findings_json(root)
    ours = report["findings"]
    if meta["reference"] == "frictionless":
        mine = fast_as_frictionless(Finding(**f) for f in ours)
        theirs = {comparable(*t) for t in frictionless_findings(root)}
        assert mine == theirs
        assert mine, "a schema fixture must produce a schema finding"
    else:
        row_codes = {r.code for r in __import__("pipelines.checks.rules", fromlist=["ROW_RULES"]).ROW_RULES}
        mine = {(f["file"], f["line"], f["column"], f["code"]) for f in ours if f["code"] in row_codes}
        theirs = {(f.file, f.line, f.column, f.code) for f in pandera_findings(root, date.fromisoformat(AS_OF))}
        assert mine == theirs
        assert mine, "a row-rule fixture must produce a row-rule finding"
