"""Reading a YAML file with one-line errors (spec.yaml, daemon.yaml)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Type, Union

import yaml

from jetseg.errors import JetsegError


def read_yaml(path: Union[str, Path], error: Type[JetsegError], what: str, hint: str = "") -> Any:
    """The parsed content of ``path``; a missing file or bad YAML raises ``error`` with one line.

    Args:
        what: how the file is called in messages (``spec``, ``config``).
        hint: appended to the "cannot read" message (what to do instead).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error("cannot read %s %s: %s%s" % (what, path, exc.strerror or exc, hint)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error("%s is not valid YAML: %s" % (path, str(exc).splitlines()[0])) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise error("%s nests too deeply for a %s (thousands of levels); expected a few levels of sections"
                    % (path, what)) from None
