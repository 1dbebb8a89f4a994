"""core/ never imports Streamlit (also enforced by ruff's banned-api rule)."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT


def test_no_module_under_core_imports_streamlit():
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert offenders == []


def test_every_module_starts_with_a_docstring():
    missing = [
        str(p.relative_to(ROOT))
        for folder in ("core", "ui", "app_pages")
        for p in (ROOT / folder).rglob("*.py")
        if p.read_text().strip() and ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert missing == []


def test_only_the_spark_module_imports_pyspark_and_only_the_scale_command_loads_it():
    importers = set()
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "pyspark" for n in names):
                importers.add(str(path.relative_to(ROOT)))
    assert importers <= {"core/scale/spark.py"}
    probe = (
        "import sys, core.cli, core.pipeline, core.api.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyspark' or m == 'core.scale.spark'))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
