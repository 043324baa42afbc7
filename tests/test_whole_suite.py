"""The promise to contributors: a valid pull request passes every check the first time.

A clean clone of this commit gets a new model added the way CONTRIBUTING.md says (model-atlas new,
placeholders replaced, rows dated today), passes fmt, validate and a plain build, is committed on a
branch, and then the test suite runs on that clone and must pass. No test may depend on the
data's counts, outputs or dates.

The inner run leaves out the modules marked fixtures_only: they build every package they check from
tests/fixtures and never read the checkout's data/, so a new row cannot change their outcome (the
outer run has just run them on the same code). test_fixtures_only_modules_never_read_the_checkouts_data
holds them to that."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GIT_ENV, REPO, cli_path, git, utc_today

INNER = "MODEL_ATLAS_INNER_SUITE"  # set in the suite this test starts, which leaves this test out
THIS = "tests/test_whole_suite.py::test_a_new_model_on_a_branch_passes_the_whole_suite"
SOURCE = "sample-lab-sample-lm-2b"


def finished_rows(today: str) -> dict[str, list[str]]:
    """The rows a contributor ends with for a made-up model (a different one from CONTRIBUTING's, which the inner suite adds)."""
    return {
        "data/sources.csv": [f"{SOURCE},https://example.org/sample-lm-2b,Sample LM 2B model card,Sample Lab,model-card,primary,2025-06-02,{today}"],
        "data/models.csv": [
            "sample-lm-2b,Sample LM 2B,model,,Sample Lab,2025-06,2000000000,,4096,true,,,,,,,,,,,"
            '"A made-up 2B-parameter dense decoder added by the whole-suite test."'
        ],
        "data/model_classes.csv": ["sample-lm-2b,decoder-only", "sample-lm-2b,dense-model"],
        "data/citations.csv": [
            f"models,sample-lm-2b,*,{SOURCE},model card",
            f"models,sample-lm-2b,context_length,{SOURCE},specifications",
            f"models,sample-lm-2b,open_weights,{SOURCE},licence section",
            f"models,sample-lm-2b,params_total,{SOURCE},specifications",
            f"models,sample-lm-2b,release_date,{SOURCE},release note",
        ],
        "data/reviews.csv": [
            f'rev-sample-lm-2b-{today},models,sample-lm-2b,a-contributor,{today},confirmed,high,,,,"Checked size, context, weights and date against the model card."'
        ],
    }


def run(cwd: Path, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_new_model_on_a_branch_passes_the_whole_suite(tmp_path):
    if os.environ.get(INNER):
        pytest.fail(f"{THIS} must not run inside the suite it starts (it is deselected there); {INNER} is set")
    copy = tmp_path / "atlas"
    git(tmp_path, "clone", "-q", "--no-local", str(REPO), str(copy))
    git(copy, "update-ref", "refs/remotes/origin/main", "HEAD")  # the commit the contributor starts from
    git(copy, "switch", "-qc", "add-sample-lm-2b")
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(copy)}  # the clone's own code, in pytest and in the CLI
    env.pop("SOURCE_DATE_EPOCH", None)
    cli = cli_path()

    # CONTRIBUTING: new source, new model, replace the placeholders, fmt, validate, build
    for args in (["new", "source", "--name", "Sample LM 2B model card", "--id", SOURCE, "--append"], ["new", "model", "--name", "Sample LM 2B", "--append"]):
        proc = run(copy, cli, *args, env=env)
        assert proc.returncode == 0, proc.stderr
    placeholders = run(copy, cli, "validate", env=env)
    assert placeholders.returncode == 1 and "error[placeholder]" in placeholders.stdout
    today = utc_today()
    for rel, lines in finished_rows(today).items():
        committed = git(copy, "show", f"HEAD:{rel}")
        (copy / rel).write_text(committed + "\n".join(lines) + "\n", encoding="utf-8")
    for args in (["fmt"], ["validate"], ["build", "--out", str(tmp_path / "dist")]):
        proc = run(copy, cli, *args, env=env)
        assert proc.returncode == 0, f"model-atlas {' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert f"as of {today}" in proc.stdout
    again = run(copy, cli, "build", "--out", str(tmp_path / "dist"), env=env)  # the README's first command, a second time
    assert again.returncode == 0 and "left unchanged" in again.stdout, again.stderr
    git(copy, "add", "data")
    git(copy, "commit", "-qm", "Add Sample LM 2B")
    assert git(copy, "status", "--porcelain") == ""

    # the whole suite on the clone of that branch
    inner = {**env, INNER: "1"}
    if (REPO / ".venv-duckdb1").is_dir():
        inner["MODEL_ATLAS_DUCKDB1_VENV"] = str(REPO / ".venv-duckdb1")  # a DuckDB 1.x client already installed
    if (REPO.parent / "shared" / "tools").is_dir():
        inner["MODEL_ATLAS_SEED_TOOLS"] = str(REPO.parent / "shared" / "tools")
    proc = run(copy, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--deselect", THIS, "-m", "not fixtures_only", env=inner, timeout=3000)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    if "MODEL_ATLAS_SEED_TOOLS" in inner:
        assert "skipped" not in summary, summary


# commands that read the package at --root (default: the working directory)
READS_PACKAGE = {"validate", "build", "fmt", "new", "coverage", "stale", "diff", "ingest", "from-config", "crosscheck", "changes"}


def test_fixtures_only_modules_never_read_the_checkouts_data():
    """A module marked fixtures_only names no path under the checkout's data/, runs nothing in the
    checkout, and gives every CLI command that reads a package a --root or a working directory."""

    import re

    mark = re.compile(r"^pytestmark = pytest\.mark\.fixtures_only$", re.M)
    marked = [p for p in sorted((REPO / "tests").glob("test_*.py")) if mark.search(p.read_text(encoding="utf-8"))]
    assert len(marked) >= 5, [p.name for p in marked]
    assert [p for path in marked for p in fixtures_only_problems(path)] == []


def fixtures_only_problems(path: Path) -> list[str]:
    import ast

    problems = []
    source = path.read_text(encoding="utf-8")
    if 'REPO / "data"' in source or "REPO / 'data'" in source or "cwd=REPO" in source:
        problems.append(f"{path.name}: reads the checkout's data or runs in the checkout")
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "run_cli" and node.args):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and first.value in READS_PACKAGE:
            consts = {a.value for a in node.args if isinstance(a, ast.Constant)}
            if "--root" not in consts and not any(k.arg == "cwd" for k in node.keywords):
                problems.append(f"{path.name}:{node.lineno}: run_cli({first.value!r}, ...) without --root or cwd reads the checkout")
    return problems


def test_the_fixtures_only_check_catches_a_module_that_reads_the_checkout(tmp_path):
    bad = tmp_path / "test_bad.py"
    bad.write_text(
        'pytestmark = pytest.mark.fixtures_only\nrun_cli("validate", "--as-of", AS_OF)\nrun_cli("verify", "x")\nrun_cli("build", "--root", str(r))\nx = REPO / "data"\n',
        encoding="utf-8",
    )
    problems = fixtures_only_problems(bad)
    assert len(problems) == 2 and "test_bad.py:2: run_cli('validate'" in problems[1] and "reads the checkout's data" in problems[0]
