"""`jetseg bench` (placeholder until its issue lands)."""
from __future__ import annotations

import argparse

from jetseg.errors import JetsegError

HELP = "bench (not implemented yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise JetsegError("'jetseg bench' is not implemented yet")
