"""Lay out the installed shape of the ``jetseg`` package as a tree of symlinks, for static tools.

setup.py maps the repository's top-level folders onto one import package (``jetson/`` -> ``jetseg.jetson``,
...). Tools that walk the file system (import-linter's grimp, mypy) cannot follow that mapping through the
editable install, so this writes ``OUT/jetseg/...`` with real directories and one symlink per source file,
the way a wheel would lay them out. Run from the repository root::

    python tools/package_tree.py build/tree
    PYTHONPATH=build/tree lint-imports
"""
from __future__ import annotations

import ast
import os
import shutil
import sys
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = (".py", ".pyi")


def folders() -> Dict[str, str]:
    """setup.py's ``FOLDERS`` (repository folder -> package name), read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FOLDERS" for t in node.targets):
            return dict(ast.literal_eval(node.value))
    raise SystemExit("setup.py has no FOLDERS mapping")


def build(out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    for folder, package in folders().items():
        source = ROOT / folder
        target = out.joinpath(*package.split("."))
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and (Path(dirpath) / d / "__init__.py").is_file()]
            here = target / Path(dirpath).relative_to(source)
            for name in filenames:
                if name.endswith(SUFFIXES):
                    here.mkdir(parents=True, exist_ok=True)
                    (here / name).symlink_to(Path(dirpath, name).resolve())
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "build/tree").resolve()))
