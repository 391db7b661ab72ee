"""Parameters and MACs of an ONNX model (jetseg.models.complexity)."""
from __future__ import annotations

import pytest

from tests.fixtures.models import batch_conv

pytest.importorskip("onnx")


def test_counts_a_static_conv():
    from jetseg.models.complexity import onnx_stats

    assert onnx_stats(batch_conv(1)) == {"params": 18, "macs": 2 * 8 * 8 * 9, "uncounted_nodes": []}


def test_a_node_with_a_symbolic_dim_is_uncounted_not_zero_macs():
    from jetseg.models.complexity import onnx_stats

    stats = onnx_stats(batch_conv("N"))
    assert stats["macs"] == 0 and stats["uncounted_nodes"] == ["conv"]
