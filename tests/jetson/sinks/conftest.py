"""Fixtures for the sink tests."""
from __future__ import annotations

import pytest

from jetseg.spec import Spec
from tests.fixtures.specs import overlay_spec


@pytest.fixture
def spec() -> Spec:
    return overlay_spec()
