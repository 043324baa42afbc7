"""The folder tree shows the flow: package -> checks -> release -> contrib -> cli, and nothing imports upward."""

import ast
from pathlib import Path

import pytest

# every package here is built from tests/fixtures: no test reads the checkout's data/ (see tests/test_whole_suite.py)
pytestmark = pytest.mark.fixtures_only

REPO = Path(__file__).resolve().parent.parent
STAGES = ["package", "checks", "release", "contrib", "site"]


def _stage(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "pipelines" or len(parts) < 2:
        return -1
    return STAGES.index(parts[1]) if parts[1] in STAGES else len(STAGES)  # cli sits on top


def test_no_stage_imports_a_higher_stage():
    upward = []
    files = sorted((REPO / "pipelines").rglob("*.py"))
    assert len(files) > 10
    for path in files:
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        own = _stage(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipelines"):
                if _stage(node.module) > own:
                    upward.append(f"{module} imports {node.module} (line {node.lineno})")
    assert not upward, "a lower stage imports a higher one:\n" + "\n".join(upward)


def test_each_stage_is_a_package_listed_in_pyproject():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    for stage in STAGES:
        if (REPO / "pipelines" / stage).is_dir():
            assert (REPO / "pipelines" / stage / "__init__.py").is_file()
            assert f'"pipelines.{stage}"' in text, f"add pipelines.{stage} to [tool.setuptools] packages"
