"""The CLI's surface and the documents that describe it stay in step."""

from __future__ import annotations

import re
import subprocess
import sys

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


def test_generated_docs_are_current():
    proc = subprocess.run([sys.executable, "-m", "pipelines.contrib.docs", "--check"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr + "\nregenerate with: python -m pipelines.contrib.docs"


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
    tool = REPO.parent / "shared" / "tools" / "copycheck.py"
    if not tool.exists():
        pytest.skip("the shared seed tools are not beside this checkout")
    proc = subprocess.run([sys.executable, str(tool), "data", "docs", "README.md", "CONTRIBUTING.md"], cwd=REPO, capture_output=True, text=True)
    assert "0 runs of 8+ words shared with the seeds" in proc.stdout, proc.stdout[-2000:]


def test_validate_the_real_data_is_clean_and_checked_something():
    proc = run_cli("validate", "--root", str(REPO), "--as-of", "2026-11-23", "--format", "json")
    import json

    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report["findings"][:5]
    assert report["errors"] == 0
    assert int(report["checked"].split(", ")[1].split()[0]) > 1000


def test_github_format_annotates_lines(tmp_path):
    from conftest import AS_OF, defect_package

    root, _ = defect_package("foreign-key", tmp_path)
    proc = run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--format", "github")
    assert proc.returncode == 1
    assert "::error file=data/model_classes.csv,line=3,title=foreign-key in class_id::" in proc.stdout
