"""The layer contracts hold in both directions: a probe import that breaks one is caught by
lint-imports (run on a copy of the package, so the tree is never touched)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT)], cwd=tree, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})


@pytest.mark.skipif(not LINT.exists(), reason="lint-imports is in the dev extra")
@pytest.mark.parametrize(("module", "probe", "contract"), [
    ("api/annotations.py", "from gridshift.planner import plan", "API types"),
    ("planner/ladder.py", "import gridshift.telemetry.prometheus", "API types"),
    ("sim/site.py", "import gridshift.operator.control", "do not depend on each other"),
])
def test_an_import_against_the_layers_fails_lint_imports(tmp_path: Path, module: str, probe: str,
                                                         contract: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "gridshift", tree / "gridshift", ignore=shutil.ignore_patterns("__pycache__", "*.onnx"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    assert _lint(tree).returncode == 0, "the copy as it is keeps every contract"
    with (tree / "gridshift" / module).open("a") as f:
        f.write(f"\n{probe}  # probe\n")
    broken = _lint(tree)
    assert broken.returncode != 0
    assert "BROKEN" in broken.stdout and contract in broken.stdout.replace("\n", " ")
