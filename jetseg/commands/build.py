"""`jetseg build` (placeholder until its issue lands)."""
from __future__ import annotations

import argparse

from jetseg.errors import JetsegError

HELP = "build (not implemented yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise JetsegError("'jetseg build' is not implemented yet")
