"""Shared test helpers: build packages from the fixture catalogue and run the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
DEFECTS = FIXTURES / "defects"
AS_OF = "2026-11-23"


def cli_path() -> str:
    """The installed console script next to this interpreter (the real entry point)."""
    exe = Path(sys.executable).parent / "model-atlas"
    if not exe.exists():
        pytest.fail("model-atlas is not installed in this environment; run: pip install -e '.[dev]'")
    return str(exe)


def run_cli(*args: str, cwd: Path | None = None, check_traceback: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run model-atlas through its console script; never accept a traceback."""
    proc = subprocess.run([cli_path(), *args], capture_output=True, text=True, cwd=cwd, timeout=300, env=env)
    if check_traceback:
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stdout, proc.stdout
    return proc


def utc_today() -> str:
    """Today in UTC, the date every command defaults to (tests of the real data run at it)."""
    return datetime.now(UTC).date().isoformat()


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_AUTHOR_DATE": "2026-11-20T12:00:00Z",  # commits in tests are dated, so their time is never the build's by chance
    "GIT_COMMITTER_DATE": "2026-11-20T12:00:00Z",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    """Run git with a fixed identity and no user configuration."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def git_repo(root: Path) -> Path:
    """Commit everything under root on a new main branch."""
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def valid_package(target: Path) -> Path:
    """The repo's descriptor and schemas with the small valid fixture data."""
    shutil.copy(REPO / "datapackage.json", target / "datapackage.json")
    shutil.copytree(REPO / "schemas", target / "schemas")
    shutil.copytree(FIXTURES / "valid" / "data", target / "data")
    return target


def review_today(root: Path) -> Path:
    """Date every review of a package today (UTC), so a test that runs at today's date never meets a stale row."""
    path = root / "data" / "reviews.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(",2026-11-01,", f",{utc_today()},"), encoding="utf-8")
    assert ",2026-11-01," not in path.read_text(encoding="utf-8")
    return root


def defect_package(name: str, target: Path) -> tuple[Path, dict]:
    """The valid package overlaid with one committed defect fixture."""
    valid_package(target)
    src = DEFECTS / name
    meta = json.loads((src / "defect.json").read_text(encoding="utf-8"))
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_file() and rel.as_posix() != "defect.json":
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / rel)
    for rel in meta["deleted"]:
        (target / rel).unlink()
    return target, meta


def findings_json(root: Path, *extra: str) -> tuple[int, dict]:
    proc = run_cli("validate", "--root", str(root), "--as-of", AS_OF, "--format", "json", *extra)
    return proc.returncode, json.loads(proc.stdout)


DEFECT_NAMES = sorted(p.name for p in DEFECTS.iterdir() if p.is_dir())
