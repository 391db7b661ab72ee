"""Fixtures for the sink tests (the helpers themselves live in sinkhelpers.py)."""
from __future__ import annotations

import pytest
from sinkhelpers import make_spec

from jetseg.spec import Spec


@pytest.fixture
def spec() -> Spec:
    return make_spec()
