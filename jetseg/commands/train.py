"""`jetseg train` (placeholder until its issue lands)."""
from __future__ import annotations

import argparse

from jetseg.errors import JetsegError

HELP = "train (not implemented yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise JetsegError("'jetseg train' is not implemented yet")
