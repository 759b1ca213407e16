"""The layers contract (pyproject.toml [tool.importlinter]) holds on this tree, and a new upward import breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})


def test_the_tree_keeps_its_layers():
    answer = lint(ROOT)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "0 broken" in answer.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    tree = tmp_path / "tree"
    for name in ("apps", "notifications_project"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tree)
    channels = tree / "apps" / "core" / "channels.py"
    channels.write_text(channels.read_text() + "\nfrom apps.delivery import service  # noqa: E402, F401\n")
    campaigns = tree / "apps" / "campaigns" / "results.py"
    campaigns.write_text(campaigns.read_text() + "\nfrom apps.delivery import sender  # noqa: E402, F401\n")
    answer = lint(tree)
    assert answer.returncode != 0
    assert "Apps only point down BROKEN" in answer.stdout
    assert "apps.core.channels -> apps.delivery.service" in answer.stdout
    assert "Campaigns use the delivery pipeline only through its service module BROKEN" in answer.stdout
