"""The repository's shape: small modules (no shipped source file over 450 lines); the core's import contract
names every core module."""
from __future__ import annotations

import re

from tests.fixtures.paths import REPO

PARTS = ("jetseg", "jetson", "calibration", "benchmarks", "models", "training", "tools")
MAX_LINES = 450


def test_no_shipped_source_file_is_over_450_lines():
    long = {}
    for part in PARTS:
        for path in (REPO / part).rglob("*.py"):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > MAX_LINES:
                long[str(path.relative_to(REPO))] = lines
    assert not long, "split these modules (at most %d lines each): %s" % (MAX_LINES, long)


def test_the_core_contract_lists_every_core_module():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    contract = text[text.index('name = "core imports no part above it"'):]
    listed = re.findall(r'"(jetseg\.\w+)"', contract[contract.index("source_modules"):contract.index("]")])
    core = {"jetseg." + p.stem for p in (REPO / "jetseg").glob("*.py")} - {"jetseg.__init__", "jetseg.__main__"}
    assert sorted(listed) == sorted(core), "pyproject's core contract: add %s, drop %s" % (
        sorted(core - set(listed)), sorted(set(listed) - core))
