"""The Source base: options that no source reads are refused, not swallowed."""
from __future__ import annotations

import pytest

from jetseg.errors import SourceError
from jetseg.jetson.sources import Source


class _NoOptions(Source):
    """A source that reads no options of its own (it leaves them all to the base)."""

    kind = "bare"


def test_an_option_nobody_reads_is_a_one_line_error_naming_it():
    with pytest.raises(SourceError, match=r"^unknown bare source option 'colour'; known options: none$"):
        _NoOptions("bare://", colour="red")
    assert _NoOptions("bare://").uri == "bare://"
