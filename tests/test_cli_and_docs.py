"""The CLI's surface and the documents that describe it stay in step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from pipelines.cli import build_parser

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


def test_there_are_commands():
    assert {"validate", "build", "verify", "query", "fmt", "diff", "stale", "new"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_documented(command):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0 and "usage: model-atlas" in proc.stdout
    assert f"model-atlas {command}" in (REPO / "README.md").read_text(), f"README lacks model-atlas {command}"


def test_usage_errors_exit_2_without_traceback():
    assert run_cli().returncode == 2
    assert run_cli("validate", "--as-of", "yesterday").returncode == 2
    assert run_cli("no-such-command").returncode == 2


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```\n(.*?)\n```", readme, re.S)
    install_and_build, tests = blocks[0], blocks[1]
    assert readme.index(install_and_build) < readme.index("## ")  # before any section
    assert "pip install" in install_and_build and install_and_build.endswith("model-atlas build")
    assert "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci, ".ci/run must run exactly the README's test command"


def test_documents_generated_from_the_schemas_are_current():
    """The data dictionary and CONTRIBUTING's allowed values follow the schemas; a data change cannot make this fail."""
    proc = subprocess.run([sys.executable, "-m", "pipelines.contrib.docs", "--check", "--schemas"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr + "\nregenerate with: python -m pipelines.contrib.docs"


def test_contributing_lists_every_allowed_value_of_the_schemas():
    from pipelines.package.descriptor import load_package

    text = (REPO / "CONTRIBUTING.md").read_text()
    block = text[text.index("<!-- allowed values:") : text.index("<!-- end of allowed values -->")]
    for name, table in load_package(REPO).tables.items():
        for f in table.fields:
            if f.enum:
                assert f"| `{name}.{f.name}` | {', '.join(f'`{v}`' for v in f.enum)} |" in block
    assert "`paper`, `model-card`" in block  # sources.kind, which used to be discoverable only by reading rows


def test_pre_commit_regenerates_the_docs_like_a_formatter():
    """Generated docs stay current without a manual step: the hook writes them (CI runs the same hook)."""
    config = (REPO / ".pre-commit-config.yaml").read_text()
    hook = config[config.index("- id: model-atlas-docs") :].split("- id:")[1]
    assert "entry: python -m pipelines.contrib.docs\n" in hook and "--check" not in hook
    for watched in ("data/", "schemas/", "CONTRIBUTING", "queries"):
        assert watched in hook


@pytest.fixture(scope="module")
def real_release(tmp_path_factory):
    """A release of the real data as a contributor builds it: no --as-of (today in UTC)."""
    out = tmp_path_factory.mktemp("dist")
    proc = run_cli("build", "--root", str(REPO), "--out", str(out), "--version", "0.0.0-cookbook")
    assert proc.returncode == 0, proc.stderr
    return out / "model-atlas-0.0.0-cookbook"


def test_every_cookbook_query_runs_on_the_real_data(real_release):
    from pipelines.contrib.docs import BLOCK
    from pipelines.release.query import run_query

    queries = [m["sql"] for m in BLOCK.finditer((REPO / "docs" / "queries.md").read_text())]
    assert len(queries) >= 12
    for sql in queries:
        columns = run_query(real_release / "model-atlas.duckdb", sql).columns
        assert columns, sql


def test_cookbook_outputs_are_rendered_from_a_release_at_the_newest_date_of_the_data(tmp_path):
    """The generator on the fixture: outputs replaced by what each query prints, and the as-of date named."""
    from conftest import valid_package

    from pipelines.contrib.docs import build_for_docs, newest_date, render_cookbook
    from pipelines.package.descriptor import load_package

    (tmp_path / "pkg").mkdir()
    root = valid_package(tmp_path / "pkg")
    as_of = newest_date(load_package(root))
    assert as_of.isoformat() == "2026-11-01"  # the fixture's newest review and access date
    release = build_for_docs(root, tmp_path / "out", as_of)
    page = "Outputs at as-of date 2000-01-01.\n\n```sql\nSELECT model_id FROM models WHERE params_active IS NOT NULL;\n```\n\n```text\nstale\n```\n"
    assert render_cookbook(page, release, as_of) == (
        "Outputs at as-of date 2026-11-01.\n\n```sql\nSELECT model_id FROM models WHERE params_active IS NOT NULL;\n```\n\n"
        "```text\nmodel_id\n-----------\nsparse-8x1b\n(1 row)\n```\n"
    )


def test_cookbook_has_at_least_twelve_queries_with_output():
    text = (REPO / "docs" / "queries.md").read_text()
    from pipelines.contrib.docs import BLOCK

    blocks = BLOCK.findall(text)
    assert len(blocks) >= 12
    assert all(out.rstrip().endswith(")") for _, out in blocks), "every query shows its printed output"


def test_data_dictionary_lists_every_schema_field():
    from pipelines.package.descriptor import load_package

    text = (REPO / "docs" / "data-dictionary.md").read_text()
    for table in load_package(REPO).tables.values():
        for f in table.fields:
            assert f"| `{f.name}` |" in text


def test_text_is_not_copied_from_the_seeds():
    tool = Path(os.environ.get("MODEL_ATLAS_SEED_TOOLS", REPO.parent / "shared" / "tools")) / "copycheck.py"
    if not tool.exists():
        pytest.skip("the shared seed tools are not beside this checkout")
    proc = subprocess.run([sys.executable, str(tool), "data", "docs", "README.md", "CONTRIBUTING.md"], cwd=REPO, capture_output=True, text=True)
    assert "0 runs of 8+ words shared with the seeds" in proc.stdout, proc.stdout[-2000:]


def test_validate_the_real_data_is_clean_today_and_checked_every_row():
    """An invariant of data/: no error at today's date (what a contributor's plain validate uses)."""
    import csv
    import json

    from pipelines.package.descriptor import load_package

    proc = run_cli("validate", "--root", str(REPO), "--format", "json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report["findings"][:5]
    assert report["errors"] == 0
    pkg = load_package(REPO)
    rows = 0
    for table in pkg.tables.values():
        with open(REPO / table.path, newline="", encoding="utf-8") as fh:
            rows += sum(1 for _ in csv.DictReader(fh))
    assert report["checked"] == f"{len(pkg.tables)} tables, {rows} rows"


def test_github_format_annotates_lines(tmp_path):
    from conftest import AS_OF, defect_package

    root, _ = defect_package("foreign-key", tmp_path)
    proc = run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--format", "github")
    assert proc.returncode == 1
    assert "::error file=data/model_classes.csv,line=3,title=foreign-key in class_id::" in proc.stdout


def test_every_pattern_field_has_a_plain_language_hint():
    from pipelines.package.descriptor import load_package

    patterned = [(t.name, f) for t in load_package(REPO).tables.values() for f in t.fields if "pattern" in f.constraints]
    assert len(patterned) > 10
    missing = [f"{t}.{f.name}" for t, f in patterned if not f.hint]
    assert not missing, f"add an x-hint (the pattern in plain words) to: {missing}"


def test_messages_are_in_words(tmp_path):
    """A pattern finding prints the hint, not the regex; an enum finding lists the allowed values; a repeated key is one finding."""
    from conftest import defect_package, findings_json

    (tmp_path / "a").mkdir()
    root, _ = defect_package("pattern", tmp_path / "a")
    _, report = findings_json(root)
    (message,) = [f["message"] for f in report["findings"] if f["code"] == "pattern"]
    assert message.endswith(": write a GitHub handle in lower case (letters, digits and hyphens), for example model-atlas-curators")
    assert "^" not in message and "[a-z" not in message
    (tmp_path / "b").mkdir()
    root, _ = defect_package("enum", tmp_path / "b")
    _, report = findings_json(root)
    (message,) = [f["message"] for f in report["findings"] if f["code"] == "enum"]
    assert "; allowed: model, family, product, device, framework" in message
    (tmp_path / "c").mkdir()
    root, _ = defect_package("unique", tmp_path / "c")
    _, report = findings_json(root)
    assert [(f["line"], f["code"]) for f in report["findings"]] == [(4, "primary-key")]
