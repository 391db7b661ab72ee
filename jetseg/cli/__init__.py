"""The ``jetseg`` command line.

Each subcommand lives in ``jetseg/cli/<name>.py`` (the CLI is the only code that imports the apps) and provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import only argparse-level things at
module level; heavy imports happen inside ``run`` so that ``jetseg --help`` stays fast.

A :class:`~jetseg.errors.JetsegError` ends the command with one line on stderr and a non-zero exit code;
``--verbose`` adds the traceback. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from jetseg import __version__
from jetseg.errors import JetsegError
from jetseg.redact import redact

COMMANDS = ("demo", "train", "distill", "export", "calibrate", "build", "run", "bench", "serve", "doctor", "selftest")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line plus the usage hint (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, "%s: error: %s (see '%s --help')\n" % (self.prog, message, self.prog))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jetseg", description="Real-time medical image segmentation on NVIDIA Jetson.")
    parser.add_argument("--version", action="version", version="jetseg " + __version__)
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show details and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module("jetseg.cli." + name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, parents=[common])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from jetseg.log import setup_logging

    setup_logging(verbose=args.verbose)
    try:
        return int(args._run(args) or 0)
    except JetsegError as exc:
        if args.verbose:
            logging.getLogger("jetseg").exception("details")
        print("jetseg %s: error: %s" % (args.command, redact(exc)), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("jetseg %s: interrupted" % args.command, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
