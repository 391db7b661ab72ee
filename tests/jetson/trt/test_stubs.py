"""typings/tensorrt (what mypy checks jetseg against) must stay a subset of NVIDIA's tensorrt-stubs.

mypy cannot parse tensorrt-stubs itself (some plugin methods name a parameter ``in``), so every class and
member declared in the local stub is looked up, by name, in the installed stubs' text.
"""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO

LOCAL = REPO / "typings" / "tensorrt" / "__init__.pyi"


def _installed_stubs() -> str:
    spec = importlib.util.find_spec("tensorrt_bindings")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tensorrt-stubs is not installed (setup.sh installs it on x86)")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / "tensorrt.pyi").is_file():  # a real TensorRT's bindings, not the stubs package
        pytest.skip("tensorrt-stubs is not installed (setup.sh installs it on x86)")
    return (folder / "tensorrt.pyi").read_text() + (folder / "__init__.pyi").read_text()


def _class_blocks(text: str):
    blocks = {}
    for match in re.finditer(r"^class (\w+)\b[^\n]*\n(.*?)(?=^class |\Z)", text, re.S | re.M):
        blocks[match.group(1)] = match.group(2)
    return blocks


def test_local_stub_is_a_subset_of_tensorrt_stubs():
    text = _installed_stubs()
    blocks = _class_blocks(text)
    local = ast.parse(LOCAL.read_text())
    missing = []
    for node in local.body:
        if isinstance(node, ast.ClassDef):
            if node.name not in blocks:
                missing.append(node.name)
                continue
            body = blocks[node.name]
            for item in node.body:
                names = []
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    names = [item.name]
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names = [item.target.id]
                for name in names:
                    if not re.search(r"\b%s\b" % re.escape(name), body):
                        missing.append("%s.%s" % (node.name, name))
        elif isinstance(node, (ast.AnnAssign, ast.FunctionDef)):
            name = node.target.id if isinstance(node, ast.AnnAssign) else node.name
            if name != "__version__" and not re.search(r"\b%s\b" % re.escape(name), text):
                missing.append(name)
    assert missing == []
