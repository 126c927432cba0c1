"""What the operator image installs (no Docker engine here): the build context the Dockerfile sees,
as .dockerignore filters it, built into the wheel its `pip install .` would install. The dev tools
(gridshift/devcluster) and their PKI dependency (cryptography) stay out."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rules() -> list[tuple[bool, str]]:
    """.dockerignore as (include?, pattern), in order; the last rule that matches a path decides."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/").replace("**/", "*")))
    return rules


def _in_context(path: str, rules: list[tuple[bool, str]]) -> bool:
    keep = True
    for include, pattern in rules:
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            keep = include
    return keep


def test_the_image_installs_no_dev_tools_and_no_cryptography(tmp_path: Path) -> None:
    rules = _rules()
    context = tmp_path / "context"
    for file in ROOT.rglob("*"):
        rel = file.relative_to(ROOT).as_posix()
        if file.is_file() and not rel.startswith((".git/", ".venv/", "out/")) and _in_context(rel, rules):
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, context / rel)
    assert (context / "gridshift" / "operator" / "handlers.py").exists()
    assert not (context / "tests").exists() and not (context / "gridshift" / "devcluster").exists()

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheel"), str(context)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "wheel").glob("gridshift-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "gridshift/operator/handlers.py" in names and "gridshift/forecaster/default_model/model.json" in names
    assert not [n for n in names if n.startswith("gridshift/devcluster/")]
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [line for line in requires if "extra ==" not in line]
    assert any("kopf" in line for line in runtime)
    assert not [line for line in runtime if "cryptography" in line]
