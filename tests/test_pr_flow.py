"""The contributor's path, end to end: new -> edit -> fmt -> validate -> diff, in a real git repository.

Behaviour is tested on the small fixture package (tests/fixtures/valid) at pinned dates, so no change
to data/ can make these tests fail; only the round trip of fmt reads the real data (an invariant).
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import AS_OF, REPO, git, git_repo, review_today, run_cli, utc_today, valid_package
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TODAY = AS_OF  # the fixture's pinned "today"


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository holding the project's descriptor and schemas with the fixture data, committed on main."""
    root = tmp_path / "atlas"
    root.mkdir()
    return git_repo(valid_package(root))


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def append(path: Path, *lines: str) -> None:
    with open(path, "a", encoding="utf-8", newline="") as fh:
        for line in lines:
            fh.write(line + "\n")


def line_of(path: Path, needle: str) -> int:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle} not in {path}")


def new_model(day: str = TODAY) -> list[tuple[str, str]]:
    """A complete, valid new model with its source, class link, citations and review, reviewed on day."""
    return [
        ("data/sources.csv", f"arxiv-9999-00001,https://arxiv.org/abs/9999.00001,An example open model,Example Lab,paper,primary,2024-10-01,{day}"),
        (
            "data/models.csv",
            "example-lm-3b,Example LM 3B,model,,Example Lab,2024-10,3000000000,,32768,true,,,,,,,,,,,"
            '"A small dense decoder released with open weights, used to test the pull-request flow."',
        ),
        ("data/model_classes.csv", "example-lm-3b,small-language-model"),
        ("data/citations.csv", "models,example-lm-3b,*,arxiv-9999-00001,Abstract"),
        ("data/citations.csv", "models,example-lm-3b,context_length,arxiv-9999-00001,Table 1"),
        ("data/citations.csv", "models,example-lm-3b,open_weights,arxiv-9999-00001,Section 6"),
        ("data/citations.csv", "models,example-lm-3b,params_total,arxiv-9999-00001,Table 1"),
        ("data/citations.csv", "models,example-lm-3b,release_date,arxiv-9999-00001,arXiv v1 date"),
        (
            "data/reviews.csv",
            f'rev-example-lm-3b,models,example-lm-3b,a-contributor,{day},confirmed,high,,,,"Checked size, context, weights and date against the paper."',
        ),
    ]


NEW_MODEL = new_model()


def test_a_valid_new_model_passes_and_shows_in_diff(repo):
    for file, line in NEW_MODEL:
        append(repo / file, line)
    fmt = run_cli("fmt", "--root", str(repo))
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    proc = run_cli("validate", "--root", str(repo), "--as-of", AS_OF, "--changed-since", "main")
    assert proc.returncode == 0, proc.stdout
    diff = run_cli("diff", "main", "--root", str(repo))
    assert diff.returncode == 0
    assert "| models | 1 | 0 | 0 |" in diff.stdout and "| citations | 5 | 0 | 0 |" in diff.stdout
    assert "`example-lm-3b`" in diff.stdout


def test_a_changed_fact_shows_old_and_new(repo):
    path = repo / "data" / "models.csv"
    text = path.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("dense-7b,"))
    path.write_text(text.replace(row, row.replace(",8192,", ",4096,")), encoding="utf-8")
    diff = run_cli("diff", "main", "--root", str(repo))
    assert "| `dense-7b` | context_length | 8192 | 4096 |" in diff.stdout


def test_a_broken_model_gets_annotations_on_the_right_lines(repo):
    for file, line in NEW_MODEL:
        if "context_length,arxiv" in line:
            continue  # drop one citation: the fact is then uncited
        if file == "data/model_classes.csv":
            line = "example-lm-3b,small-languge-model"
        append(repo / file, line)
    proc = run_cli("validate", "--root", str(repo), "--as-of", AS_OF, "--format", "github")
    assert proc.returncode == 1
    mc_line = line_of(repo / "data/model_classes.csv", "small-languge-model")
    m_line = line_of(repo / "data/models.csv", "example-lm-3b")
    assert f"::error file=data/model_classes.csv,line={mc_line},title=foreign-key in class_id::" in proc.stdout
    assert 'did you mean "small-language-model"?' in proc.stdout
    assert f"::error file=data/models.csv,line={m_line},title=uncited-fact in context_length::" in proc.stdout
    assert proc.stdout.count("::error") == 2


def test_pull_request_mode_blocks_only_touched_stale_rows(repo):
    for file, line in NEW_MODEL:
        append(repo / file, line)
    # two years on, every row is stale; only the row this change touches may block it
    proc = run_cli("validate", "--root", str(repo), "--as-of", "2028-12-01", "--changed-since", "main", "--format", "json")
    report = json.loads(proc.stdout)
    errors = [(f["file"], f["code"]) for f in report["findings"] if f["severity"] == "error"]
    assert errors == [("data/models.csv", "stale")]
    assert "example-lm-3b" in next(f["message"] for f in report["findings"] if f["severity"] == "error")
    reviewed = len(rows(repo / "data" / "models.csv")) + len(rows(repo / "data" / "classes.csv")) - 2  # without headers
    assert sum(f["code"] == "stale" and f["severity"] == "warning" for f in report["findings"]) == reviewed - 1
    assert proc.returncode == 1
    plain = run_cli("validate", "--root", str(repo), "--as-of", "2028-12-01", "--format", "json")
    assert json.loads(plain.stdout)["errors"] == reviewed


def test_stale_lists_rows_oldest_first(repo):
    reviews = repo / "data" / "reviews.csv"
    lines = reviews.read_text(encoding="utf-8").splitlines(keepends=True)
    # every review of one row, moved back in time
    lines = [line.replace(",2026-11-01,", ",2025-01-02,") if ",models,dense-7b," in line else line for line in lines]
    reviews.write_text("".join(lines), encoding="utf-8")
    proc = run_cli("stale", "--root", str(repo), "--as-of", AS_OF, "--format", "markdown")
    assert proc.returncode == 0
    body = [line for line in proc.stdout.splitlines() if line.startswith("| models") or line.startswith("| classes")]
    assert body[0].startswith("| models | `dense-7b` | high | 2025-01-02 | model-atlas-curators |")


def test_new_prints_templates_appends_and_refuses_existing_ids(repo):
    printed = run_cli("new", "model", "--name", "Example LM 3B", "--root", str(repo), "--date", TODAY)
    assert printed.returncode == 0 and "example-lm-3b,Example LM 3B,model" in printed.stdout
    before = (repo / "data" / "models.csv").read_bytes()
    taken = run_cli("new", "model", "--name", "Dense 7B", "--root", str(repo))
    assert taken.returncode == 1 and "already exists" in taken.stderr
    assert (repo / "data" / "models.csv").read_bytes() == before
    added = run_cli("new", "model", "--name", "Example LM 3B", "--root", str(repo), "--append", "--date", TODAY)
    assert added.returncode == 0
    assert rows(repo / "data" / "models.csv")[-1][0] == "example-lm-3b"
    # the template is valid in shape: its placeholders are the findings, one each, and fail validate
    proc = run_cli("validate", "--root", str(repo), "--as-of", AS_OF, "--format", "json")
    found = {(f["file"], f["column"], f["code"]) for f in json.loads(proc.stdout)["findings"]}
    assert proc.returncode == 1
    assert found == {
        ("data/models.csv", "organization", "placeholder"),
        ("data/models.csv", "summary", "placeholder"),
        ("data/citations.csv", "source_id", "placeholder"),
        ("data/citations.csv", "locator", "placeholder"),
        ("data/reviews.csv", "reviewer", "placeholder"),
        ("data/reviews.csv", "note", "placeholder"),
        ("data/model_classes.csv", "class_id", "foreign-key"),  # the template's decoder-only is not a class of the fixture
    }, found


def test_fmt_canonicalises_a_messy_valid_edit_without_changing_values(repo):
    assert run_cli("fmt", "--root", str(repo)).returncode == 0
    path = repo / "data" / "models.csv"
    canonical = path.read_bytes()
    original = rows(path)
    header, body = original[0], original[1:]
    random.Random(7).shuffle(body)
    messy = "\r\n".join(
        [",".join(header)]
        + [
            ",".join(
                f'" {c} "' if i == 1 else (f'"{c}"' if ("," in c or '"' in c) else c)
                for i, c in enumerate([cell.replace('"', '""') if ("," in cell or '"' in cell) else cell for cell in r])
            )
            for r in body
        ]
    )
    path.write_bytes(messy.encode("utf-8"))
    check = run_cli("fmt", "--check", "--root", str(repo))
    assert check.returncode == 1 and "data/models.csv" in check.stdout
    assert path.read_bytes() == messy.encode("utf-8"), "--check must not write"
    assert run_cli("fmt", "--root", str(repo)).returncode == 0
    assert rows(path) == original
    assert path.read_bytes() == canonical
    again = run_cli("fmt", "--check", "--root", str(repo))
    assert again.returncode == 0


def test_fmt_round_trips_the_real_data_byte_for_byte(tmp_path):
    """An invariant of the real data: it is in canonical form (pre-commit's fmt --check keeps it so)."""
    shutil.copy(REPO / "datapackage.json", tmp_path)
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    shutil.copytree(REPO / "data", tmp_path / "data")
    before = {p.name: p.read_bytes() for p in (tmp_path / "data").glob("*.csv")}
    proc = run_cli("fmt", "--root", str(tmp_path))
    assert proc.returncode == 0 and "0 file(s) reformatted" in proc.stdout
    assert {p.name: p.read_bytes() for p in (tmp_path / "data").glob("*.csv")} == before


def test_fmt_leaves_a_structurally_broken_file_alone(repo):
    path = repo / "data" / "model_relations.csv"
    broken = path.read_text(encoding="utf-8") + 'x,"unclosed\n'
    path.write_text(broken, encoding="utf-8")
    proc = run_cli("fmt", "--root", str(repo))
    assert proc.returncode == 1 and "skipped data/model_relations.csv" in proc.stderr
    assert path.read_text(encoding="utf-8") == broken


cell = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(str.strip)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(st.tuples(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), cell, cell), min_size=0, max_size=25, unique_by=lambda r: r[0]))
def test_fmt_keeps_every_value_of_generated_tables(tmp_path, body):
    import tempfile

    from pipelines.contrib.fmt import format_package
    from pipelines.package.descriptor import load_package

    root = Path(tempfile.mkdtemp(dir=tmp_path))
    (root / "schemas").mkdir()
    (root / "data").mkdir()
    schema = {"fields": [{"name": "id", "type": "string"}, {"name": "a", "type": "string"}, {"name": "b", "type": "string"}], "primaryKey": ["id"]}
    (root / "schemas" / "t.json").write_text(json.dumps(schema))
    (root / "datapackage.json").write_text(json.dumps({"resources": [{"name": "t", "path": "data/t.csv", "schema": "schemas/t.json"}]}))
    with open(root / "data" / "t.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(["id", "a", "b"])
        w.writerows(reversed(body))
    pkg = load_package(root)
    format_package(pkg, check=False)
    after = rows(root / "data" / "t.csv")
    assert Counter(map(tuple, after[1:])) == Counter(map(tuple, body))
    assert [r[0] for r in after[1:]] == sorted(r[0] for r in body)
    changed, _ = format_package(pkg, check=True)
    assert changed == []


# --- one date rule ----------------------------------------------------------------------------------


def test_rows_dated_today_pass_validate_and_build_without_as_of(repo, tmp_path):
    """No --as-of means today in UTC: a review and an accessed date of today are not "in the future"."""
    review_today(repo)
    for file, line in new_model(utc_today()):
        append(repo / file, line)
    proc = run_cli("validate", "--root", str(repo))
    assert proc.returncode == 0, proc.stdout
    built = run_cli("build", "--root", str(repo), "--out", str(tmp_path / "dist"))
    assert built.returncode == 0, built.stderr
    assert f"as of {utc_today()}" in built.stdout


def test_a_date_after_today_names_the_date_it_was_compared_with(repo):
    review_today(repo)
    tomorrow = (date.fromisoformat(utc_today()) + timedelta(days=1)).isoformat()
    for file, line in new_model(tomorrow):
        append(repo / file, line)
    proc = run_cli("validate", "--root", str(repo), "--format", "json")
    assert proc.returncode == 1
    messages = {(f["file"], f["column"]): f["message"] for f in json.loads(proc.stdout)["findings"] if f["code"] == "future-date"}
    assert messages == {
        ("data/sources.csv", "accessed"): f"accessed {tomorrow} lies after the as-of date {utc_today()}",
        ("data/reviews.csv", "reviewed_on"): f"reviewed_on {tomorrow} lies after the as-of date {utc_today()}",
    }
    pinned = run_cli("validate", "--root", str(repo), "--as-of", "2026-11-02", "--format", "json")
    assert any(f["message"] == f"accessed {tomorrow} lies after the as-of date 2026-11-02" for f in json.loads(pinned.stdout)["findings"])


def test_a_placeholder_left_in_fails_validate(repo):
    for file, line in NEW_MODEL:
        append(repo / file, line.replace("Example Lab,2024-10", "ORGANIZATION,2024-10"))
    proc = run_cli("validate", "--root", str(repo), "--as-of", AS_OF)
    assert proc.returncode == 1
    m_line = line_of(repo / "data/models.csv", "example-lm-3b")
    assert f'data/models.csv:{m_line}:organization: error[placeholder] "ORGANIZATION" is the placeholder that model-atlas new wrote' in proc.stdout
    assert "fix: Write the organisation that released the model" in proc.stdout
    assert "1 error(s)" in proc.stdout


# --- diff: which base ---------------------------------------------------------------------------------


def test_diff_compares_with_the_merge_base_of_origin_main_and_says_so(repo, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    base = git(clone, "rev-parse", "HEAD").strip()
    # the contributor commits on their local main (the case that used to show nothing) ...
    for file, line in NEW_MODEL:
        append(clone / file, line)
    git(clone, "commit", "-qam", "add a model")
    # ... while origin/main moves on with someone else's change
    path = repo / "data" / "models.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",8192,", ",4096,"), encoding="utf-8")
    git(repo, "commit", "-qam", "someone else's change")
    git(clone, "fetch", "-q")
    diff = run_cli("diff", "--root", str(clone))
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines()[0] == f"Changes from {base[:12]} (the merge base of HEAD and origin/main) to the working tree."
    assert "| models | 1 | 0 | 0 |" in diff.stdout and "`example-lm-3b`" in diff.stdout
    assert "| `dense-7b` | context_length" not in diff.stdout, "origin/main's newer change is not the contributor's"


def test_diff_without_a_remote_uses_main(repo):
    git(repo, "switch", "-qc", "add-example")
    for file, line in NEW_MODEL:
        append(repo / file, line)
    git(repo, "commit", "-qam", "add a model")
    diff = run_cli("diff", "--root", str(repo))
    assert diff.returncode == 0
    assert "(the merge base of HEAD and main) to the working tree." in diff.stdout.splitlines()[0]
    assert "`example-lm-3b`" in diff.stdout


def test_diff_without_any_base_says_what_to_do(tmp_path):
    root = valid_package(tmp_path)
    git(root, "init", "-q", "-b", "trunk")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    diff = run_cli("diff", "--root", str(root))
    assert diff.returncode == 2
    assert diff.stderr.startswith("error: no base to compare with") and "model-atlas diff REF" in diff.stderr
