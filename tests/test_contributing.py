"""CONTRIBUTING.md's walk-through runs as written: every `sh` block in order on a fresh clone, with the
finished rows it shows, and the rows it adds are valid."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import GIT_ENV, REPO, cli_path, git, utc_today

TEXT = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
SH_BLOCKS = [re.sub(r"^ {3}", "", b, flags=re.M).strip() for b in re.findall(r"^ *```sh\n(.*?)^ *```", TEXT, re.S | re.M)]
FINISHED = re.search(r"^ *```csv\n(.*?)^ *```", TEXT, re.S | re.M)[1]
EXAMPLE_DAY = "2026-11-30"  # the day the walk-through's rows are dated; a contributor writes their own today


def finished_rows() -> dict[str, list[str]]:
    """The finished rows of the walk-through, per file, dated today."""
    rows: dict[str, list[str]] = {}
    current = None
    for line in FINISHED.splitlines():
        line = line.strip()
        if line.startswith("# "):
            current = line[2:]
            rows[current] = []
        elif line:
            rows[current].append(line.replace(EXAMPLE_DAY, utc_today()))
    return rows


def shell(cwd: Path, command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(cli_path()).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SOURCE_DATE_EPOCH", None)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_walk_through_has_its_steps():
    assert SH_BLOCKS[0].startswith("git switch -c "), "CONTRIBUTING starts with creating a branch"
    assert [b.split()[1] for b in SH_BLOCKS] == ["switch", "new", "new", "fmt", "diff", "add"]
    assert set(finished_rows()) == {"data/sources.csv", "data/models.csv", "data/model_classes.csv", "data/citations.csv", "data/reviews.csv"}


def test_contributing_walk_through_runs_on_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-local", str(REPO), str(clone))
    # origin/main is the commit the contributor starts from (whatever branches the repository under test has)
    git(clone, "update-ref", "refs/remotes/origin/main", "HEAD")
    outputs = []
    for block in SH_BLOCKS:
        if block.startswith("model-atlas fmt"):
            # the contributor's edit: the template rows that `new` appended become the finished rows shown in CONTRIBUTING
            for rel, lines in finished_rows().items():
                committed = git(clone, "show", f"HEAD:{rel}")
                appended = (clone / rel).read_text(encoding="utf-8")[len(committed) :]
                assert appended, f"new appended nothing to {rel}"
                (clone / rel).write_text(committed + "\n".join(lines) + "\n", encoding="utf-8")
        proc = shell(clone, block)
        outputs.append(proc.stdout)
        assert proc.returncode == 0, f"{block}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    validate_out, diff_out = outputs[3], outputs[4]
    assert "0 error(s)" in validate_out
    assert "(the merge base of HEAD and origin/main) to the working tree." in diff_out.splitlines()[0]
    assert "| models | 1 | 0 | 0 |" in diff_out and "| citations | 5 | 0 | 0 |" in diff_out
    assert git(clone, "status", "--porcelain") == ""
    assert git(clone, "log", "-1", "--format=%s").strip() == "Add Example LM 7B"
