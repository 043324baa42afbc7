"""A reader that stops early (model-atlas validate | head -1) ends every command quietly: no message,
no traceback, the exit status a shell reports for SIGPIPE."""

from __future__ import annotations

import subprocess

import pytest
from conftest import AS_OF, cli_path, git_repo, run_cli, valid_package

from pipelines.cli import EXIT_BROKEN_PIPE

# every package here is built from tests/fixtures: no test reads the checkout's data/ (see tests/test_whole_suite.py)
pytestmark = pytest.mark.fixtures_only


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """The fixture package with 3,000 models of an unknown kind: thousands of findings."""
    root = valid_package(tmp_path_factory.mktemp("noisy"))
    with open(root / "data" / "models.csv", "a", encoding="utf-8") as fh:
        for i in range(3000):
            fh.write(f'bad-{i:05d},Bad {i},robot,,Example Org,2024-01,,,,,"A row with an unknown kind, to make a long report."\n')
    return root


def test_validate_piped_into_head_prints_one_line_and_no_error(noisy):
    script = f"set -o pipefail; '{cli_path()}' validate --root '{noisy}' --as-of {AS_OF} | head -1"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.stderr == ""
    assert len(proc.stdout.splitlines()) == 1 and "error[" in proc.stdout
    assert proc.returncode == EXIT_BROKEN_PIPE == 141
    full = run_cli("validate", "--root", str(noisy), "--as-of", AS_OF)
    assert full.returncode == 1 and full.stdout.count("\n") > 9000, "the report really is thousands of lines long"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """The fixture package as a git checkout with a built release beside it."""
    root = git_repo(valid_package(tmp_path_factory.mktemp("pipes")))
    out = tmp_path_factory.mktemp("dist")
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(out)).returncode == 0
    (out / "no-records.jsonl").write_text("")  # ingest of nothing still prints its report
    (out / "config.json").write_text('{"hidden_size": 4096, "num_hidden_layers": 32, "max_position_embeddings": 8192}')
    (out / "export.csv").write_text("id,context_length\ndense-7b,4096\n")
    return root, out / "model-atlas-0.1.0"


COMMANDS = {
    "validate": lambda root, rel: ["validate", "--root", root, "--as-of", AS_OF, "--format", "json"],
    "build": lambda root, rel: ["build", "--root", root, "--as-of", AS_OF, "--out", str(rel.parent)],  # already built: says so
    "verify": lambda root, rel: ["verify", str(rel)],
    "query": lambda root, rel: ["query", "SELECT * FROM models", "--release", str(rel)],
    "diff": lambda root, rel: ["diff", "--root", root],
    "stale": lambda root, rel: ["stale", "--root", root, "--as-of", "2030-01-01"],
    "new": lambda root, rel: ["new", "model", "--name", "Piped Model", "--root", root],
    "fmt": lambda root, rel: ["fmt", "--check", "--root", root],
    "coverage": lambda root, rel: ["coverage", "--root", root, "--as-of", AS_OF],
    "ingest": lambda root, rel: ["ingest", str(rel.parent / "no-records.jsonl"), "--reviewer", "a-contributor", "--dry-run", "--root", root],
    "from-config": lambda root, rel: ["from-config", str(rel.parent / "config.json"), "--model-id", "dense-7b", "--source-id", "example-paper"],
    "crosscheck": lambda root, rel: ["crosscheck", str(rel.parent / "export.csv"), "--map", "context_length=context_length", "--root", root],
    "site": lambda root, rel: ["site", "--release", str(rel), "--out", str(rel.parent / "site")],
    "help": lambda root, rel: ["validate", "--help"],
    "version": lambda root, rel: ["--version"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_closed_stdout_ends_every_command_quietly(checkout, name):
    root, release = checkout
    # the reading end is closed before the command writes anything: every write to stdout fails
    proc = subprocess.Popen([cli_path(), *COMMANDS[name](str(root), release)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    # argparse itself drops a failed write of --help and --version and exits 0
    assert proc.wait(timeout=300) == (0 if name in ("help", "version") else EXIT_BROKEN_PIPE), err
    if name == "from-config":  # it notes on stderr what the config does not state; nothing about the pipe
        err = "\n".join(line for line in err.splitlines() if ": note: " not in line)
    assert err == ""


def test_every_command_is_covered():
    from test_cli_and_docs import COMMANDS as CLI_COMMANDS

    assert set(CLI_COMMANDS) <= set(COMMANDS)
