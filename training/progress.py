"""Progress bars for long work (tqdm on stderr), quiet when stderr is not a terminal unless forced."""
from __future__ import annotations

import sys
from typing import Any, Optional

from jetseg.optional import require


def bar(total: Optional[int] = None, desc: str = "", unit: str = "it", disable: Optional[bool] = None) -> Any:
    """A tqdm bar on stderr; ``disable=None`` shows it only on a terminal (logs stay readable)."""
    tqdm = require("tqdm", "progress bars").tqdm
    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, dynamic_ncols=True,
                mininterval=1.0)
