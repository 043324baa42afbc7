"""The static site, built from a real release of the fixture package and opened in a real headless Chromium.

The browser is Debian's chromium (Playwright cannot download one here); .ci/run installs it. Without a
browser on a developer's machine the browser tests are skipped with that reason, except in CI where a
missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import AS_OF, REPO, run_cli, valid_package

# every package here is built from tests/fixtures: no test reads the checkout's data/ (see tests/test_whole_suite.py)
pytestmark = pytest.mark.fixtures_only

BROWSER = os.environ.get("MODEL_ATLAS_BROWSER") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(os.environ.get("MODEL_ATLAS_SCREENSHOTS", REPO / "build" / "screenshots"))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not BROWSER:
        if os.environ.get("CI"):
            pytest.fail("no Chromium found: CI must install Debian's chromium package (see .ci/run)")
        pytest.skip("no Chromium on this machine: apt-get install chromium (CI installs it)")
    return {**browser_type_launch_args, "executable_path": BROWSER, "args": ["--no-sandbox"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = valid_package(tmp_path_factory.mktemp("pkg"))
    dist = tmp_path_factory.mktemp("dist")
    proc = run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(dist), "--version", "1.2.3")
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(root)  # the site reads the release, never data/
    out = tmp_path_factory.mktemp("www") / "site"
    proc = run_cli("site", "--release", str(dist / "model-atlas-1.2.3"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"wrote .*: \d+ pages, \d+ charts", proc.stdout)
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.h1 = 0
        self.imgs: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("link", "script", "img") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src"))
        if tag == "h1":
            self.h1 += 1
        if tag == "img":
            self.imgs.append(a)


def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_a_page_for_every_model_and_class(site):
    models = {p.stem for p in (site / "models").glob("*.html")}
    classes = {p.stem for p in (site / "classes").glob("*.html")}
    assert models == {"assistant-app", "dense-7b", "sparse-8x1b"}
    assert classes == {"mixture-of-experts", "neural-network", "small-language-model"}
    for name in ("index", "models", "classes", "changes", "coverage", "downloads"):
        assert (site / f"{name}.html").is_file()


def test_every_internal_link_resolves_and_pages_have_one_h1_and_alt_text(site):
    checked = 0
    for page in _pages(site):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.h1 == 1, page
        assert all(img.get("alt") for img in parser.imgs), page
        for href in parser.links:
            url = urlparse(href)
            if url.scheme or href.startswith("#"):
                continue
            target = (page.parent / url.path).resolve()
            assert target.is_file(), f"{page.relative_to(site)} links to missing {href}"
            checked += 1
    assert checked > 50


def test_model_page_shows_facts_citations_confidence_and_reviews(site):
    html = (site / "models" / "sparse-8x1b.html").read_text(encoding="utf-8")
    assert "An example technical report" in html and "Table 2" in html
    assert "The seed multiplied 8 by 1B" in html  # the review note and the seed correction
    assert "a seed note said" in html
    assert "unpublished" in html  # the documented gap for its licence
    assert "context_length = 16384 from 2024-03" in html  # fact history
    assert "Every fact the row states was checked" in html  # the confidence level's definition


def test_chart_data_is_downloadable_next_to_each_chart(site):
    for svg in (site / "charts").glob("*.svg"):
        assert svg.with_suffix(".csv").is_file()
        assert svg.read_text(encoding="utf-8").lstrip().startswith("<svg")
    rows = (site / "charts" / "params-over-time.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "model_id,name,release_date,count,parameters,architecture"
    assert "sparse-8x1b,Sparse 8x1B,2024-03-01,active per token,1500000000,mixture-of-experts" in rows


def test_site_refuses_a_directory_that_is_not_a_release(tmp_path):
    proc = run_cli("site", "--release", str(tmp_path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "is not a release directory" in proc.stderr
    assert not (tmp_path / "out").exists()


# --- in a real browser ---


def _visit_all(page, site: Path) -> int:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"failed request: {r.url}"))
    n = 0
    for p in _pages(site):
        page.goto(p.as_uri())
        page.wait_for_load_state("load")
        n += 1
    assert errors == []
    return n


def test_every_page_loads_without_console_errors_or_failed_requests(page, site):
    assert _visit_all(page, site) == len(_pages(site))


def test_search_and_filters_narrow_the_table(page, site):
    page.goto((site / "models.html").as_uri())
    rows = page.locator("#models tbody tr")
    visible = lambda: rows.evaluate_all("rs => rs.filter(r => !r.hidden).length")  # noqa: E731
    assert visible() == 3
    page.get_by_label("Search").fill("sparse")
    assert visible() == 1
    assert page.locator("#shown").inner_text() == "1 of 3 shown"
    page.get_by_label("Search").fill("")
    page.get_by_label("Class").select_option("small-language-model")
    assert visible() == 1
    page.get_by_label("Class").select_option("")
    page.get_by_label("Confidence").select_option("medium")
    assert visible() == 1 and rows.filter(visible=True).first.locator("a").inner_text() == "Assistant App"
    page.get_by_label("Confidence").select_option("")
    page.get_by_role("columnheader", name="Parameters").click()
    first = rows.first.locator("a").inner_text()
    assert first == "Sparse 8x1B"  # 6B before 7B, the product without a count last


def test_table_is_readable_with_javascript_off(browser, site):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto((site / "models.html").as_uri())
    assert page.locator("#models tbody tr").count() == 3
    assert not page.locator("#filters").is_visible()  # the controls appear only when they work
    context.close()


def test_controls_are_labelled_and_phone_width_does_not_scroll_sideways(browser, site):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    for p in _pages(site):
        page.goto(p.as_uri())
        unlabelled = page.evaluate("() => [...document.querySelectorAll('input, select')].filter(e => !e.labels || e.labels.length === 0).length")
        assert unlabelled == 0, p
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{p.name} is {overflow}px wider than a phone screen"
    context.close()


def test_screenshots_of_home_model_and_class_pages(browser, site):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    for name, rel in (("home", "index.html"), ("model", "models/sparse-8x1b.html"), ("class", "classes/mixture-of-experts.html")):
        page.goto((site / rel).as_uri())
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
    phone = browser.new_context(viewport={"width": 375, "height": 800}).new_page()
    phone.goto((site / "models.html").as_uri())
    phone.screenshot(path=str(SCREENSHOTS / "models-phone.png"), full_page=False)
    context.close()


# --- the output directory is replaced whole, so only a new directory or an earlier site may be named ---


@pytest.fixture(scope="module")
def fixture_release(tmp_path_factory) -> Path:
    root = valid_package(tmp_path_factory.mktemp("pkg2"))
    dist = tmp_path_factory.mktemp("dist2")
    assert run_cli("build", "--root", str(root), "--as-of", AS_OF, "--out", str(dist), "--version", "1.0.0").returncode == 0
    return dist / "model-atlas-1.0.0"


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["repo", "data", "dot-git", "release", "release-parent", "file", "symlink", "empty"])
def test_site_refuses_an_out_directory_it_would_destroy(fixture_release, tmp_path, target):
    (tmp_path / "repo").mkdir()
    repo = valid_package(tmp_path / "repo")
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text("[core]\n", encoding="utf-8")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep", encoding="utf-8")
    (tmp_path / "a-file").write_text("keep", encoding="utf-8")
    (tmp_path / "link").symlink_to(victim)
    out = {
        "repo": repo,
        "data": repo / "data",
        "dot-git": repo / ".git",
        "release": fixture_release,
        "release-parent": fixture_release.parent,
        "file": tmp_path / "a-file",
        "symlink": tmp_path / "link",
        "empty": Path(""),
    }[target]
    before = {p: _tree(p) for p in (repo, victim, fixture_release)}
    proc = run_cli("site", "--release", str(fixture_release), "--out", str(out), cwd=repo)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.startswith("error: --out"), proc.stderr
    assert {p: _tree(p) for p in (repo, victim, fixture_release)} == before
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "keep"


def test_site_replaces_an_earlier_site_and_refuses_an_unverified_release(fixture_release, tmp_path):
    out = tmp_path / "site"
    assert run_cli("site", "--release", str(fixture_release), "--out", str(out)).returncode == 0
    assert (out / ".model-atlas-site").is_file()
    assert run_cli("site", "--release", str(fixture_release), "--out", str(out)).returncode == 0  # an earlier site: replaced
    tampered = tmp_path / "tampered"
    shutil.copytree(fixture_release, tampered)
    with open(tampered / "NOTES.md", "a", encoding="utf-8") as fh:
        fh.write("one more line\n")
    proc = run_cli("site", "--release", str(tampered), "--out", str(tmp_path / "site2"))
    assert proc.returncode == 2 and "does not verify" in proc.stderr
    assert not (tmp_path / "site2").exists()


def test_charts_plot_more_points_than_altairs_default_limit():
    """A large atlas has more than 5,000 dated models; the charts must still render (found by bench_site.py)."""
    from datetime import date

    from pipelines.site import charts

    models = [
        {"model_id": f"m-{i}", "name": f"M {i}", "kind": "model", "release_date": date(2024, 1 + i % 12, 1), "params_total": 10**6 + i, "params_active": None}
        for i in range(6000)
    ]
    chart = charts.params_over_time(models, {})
    assert len(chart.rows) == 6000
    assert chart.svg().lstrip().startswith("<svg")


def test_site_benchmark_script_runs_small(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_site.py"), "--rows", "200", "--keep", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"model-atlas site\s+:\s+[\d.]+ s\s+peak RSS\s+\d+ MB\s+2\d\d pages", proc.stdout), proc.stdout


def test_every_chart_spec_is_valid_vega_lite():
    """The build skips Altair's validation (it cost 0.7 s per site); the specs it writes must still be
    valid Vega-Lite, and a broken one must be caught here."""
    from datetime import date

    import jsonschema
    from altair.vegalite.v6.schema import core

    from pipelines.site import charts

    models = [
        {
            "model_id": f"m-{i}",
            "name": f"M {i}",
            "kind": "model",
            "release_date": date(2020 + i % 5, 1 + i % 12, 1),
            "params_total": 10**9 + i,
            "params_active": 10**8 if i % 3 == 0 else None,
            "context_length": 4096 * (1 + i % 4),
            "open_weights": i % 2 == 0,
        }
        for i in range(40)
    ]
    classes = [{"class_id": "dense-model", "facet": "architecture"}, {"class_id": "vision-language-model", "facet": "modality"}]
    specs = [
        charts.params_over_time(models, {"m-0": {"mixture-of-experts"}}).spec,
        charts.context_over_time(models).spec,
        charts.open_weights_per_year(models).spec,
        charts.models_per_facet(classes, {"dense-model": 3}).spec,
        charts.ClassChart().chart("dense-model", models).spec,
    ]
    validator = jsonschema.Draft7Validator(core.load_schema())
    for spec in specs:
        assert list(validator.iter_errors(spec)) == [], spec.get("title")
    broken = {**specs[0], "mark": {"type": "not-a-mark"}}
    assert list(validator.iter_errors(broken))


def test_download_links_name_the_files_the_release_workflow_attaches(fixture_release, tmp_path):
    """A GitHub release holds its files flat (the helper's report: links to parquet/... did not
    resolve). Each link is the base plus the file's own name; the names are unique; and every file of
    the release is among those release.yml attaches."""
    import fnmatch
    import shlex

    base = "https://github.com/example/atlas/releases/download/v1.0.0"
    proc = run_cli("site", "--release", str(fixture_release), "--out", str(tmp_path / "s"), env={**os.environ, "MODEL_ATLAS_DOWNLOAD_BASE": base})
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "s" / "downloads.html").read_text(encoding="utf-8")
    links = re.findall(r'href="(' + re.escape(base) + r'/[^"]+)"', page)
    files = [line.split(None, 1)[1].strip() for line in (fixture_release / "SHA256SUMS").read_text().splitlines()]
    names = [f.rsplit("/", 1)[-1] for f in files]
    assert len(set(names)) == len(names)
    assert {f"{base}/{n}" for n in names} | {f"{base}/model-atlas-1.0.0.tar.gz"} == set(links)
    # the workflow's upload list, expanded against this release as the shell would
    workflow = (REPO / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    command = re.search(r'gh release create (.*?)\n(?!\s*")', workflow.replace("\\\n", " "), re.S).group(1)
    args = shlex.split(command.replace("$dir", "DIR"))
    patterns = [a[len("DIR/") :] for a in args if a.startswith("DIR/")]
    assert patterns, args
    assert [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []


@pytest.mark.parametrize(
    "table, column, value",
    [
        ("models", "model_id", "../../../../tmp/atlas-pwn"),
        ("models", "model_id", "/tmp/atlas-abs"),
        ("classes", "class_id", "../data/models"),
        ("models", "model_id", "a.b"),
        ("model_relations", "target_id", "javascript:alert(1)"),
        ("models", "family_id", "../x"),
        ("models", "model_id", None),
    ],
)
def test_a_release_whose_ids_would_leave_the_site_is_refused(table, column, value, fixture_release):
    """Attack round 5: a forged release that passed verify made site write outside --out through a
    model or class id. Every id that names a file or a link must be a plain id."""
    from pipelines.site.build import SiteError, _check_ids, load_release

    rel = load_release(fixture_release)
    _check_ids(rel)  # the real release passes
    rows = rel.tables[table]
    rows[0] = {**rows[0], column: value}
    with pytest.raises(SiteError, match=r"is not an id a page can be named after"):
        _check_ids(rel)


def test_site_is_readable_by_a_web_server_and_refuses_an_out_dir_with_other_files(fixture_release, tmp_path):
    out = tmp_path / "www"
    assert run_cli("site", "--release", str(fixture_release), "--out", str(out)).returncode == 0
    assert oct(out.stat().st_mode & 0o777) == "0o755"
    # a planted marker does not make a source directory a site (attack round 5 replaced pipelines/)
    src = tmp_path / "src"
    src.mkdir()
    (src / ".model-atlas-site").write_text("x", encoding="utf-8")
    (src / "code.py").write_text("print(1)\n", encoding="utf-8")
    proc = run_cli("site", "--release", str(fixture_release), "--out", str(src))
    assert proc.returncode == 2 and "holds code.py, which a site never writes" in proc.stderr, proc.stderr
    assert (src / "code.py").read_text(encoding="utf-8") == "print(1)\n"
    # an earlier site is still replaced
    assert run_cli("site", "--release", str(fixture_release), "--out", str(out)).returncode == 0
