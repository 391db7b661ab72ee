"""Test tiers by hardware (markers in pyproject.toml).

- ``jetson``: skipped unless this is a Jetson (/etc/nv_tegra_release).
- ``trt``: skipped unless the tensorrt module can be found.
- ``gpu``: skipped unless an NVIDIA GPU device node exists.
- ``slow``: skipped unless ``--run-slow`` is given.

Skips happen only on missing hardware or a missing module, never on an import error, so a broken install
still fails.
"""
from __future__ import annotations

import pytest

from jetseg.optional import available
from tests.fixtures.hardware import ON_JETSON, has_gpu


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow (soak tests)")


def _reasons(config):
    return {
        "jetson": (ON_JETSON, "needs a Jetson (no /etc/nv_tegra_release); "
                   "run ./setup.sh test-device on the device"),
        "trt": (available("tensorrt"), "needs TensorRT (tensorrt module not found)"),
        "gpu": (has_gpu(), "needs an NVIDIA GPU (no device node found)"),
        "slow": (config.getoption("--run-slow"), "slow test; run with --run-slow"),
    }


def pytest_collection_modifyitems(config, items):
    reasons = _reasons(config)
    for item in items:
        for marker, (ok, why) in reasons.items():
            if item.get_closest_marker(marker) is not None and not ok:
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def tiny_bundle(tmp_path):
    """A bundle of one 3x3 convolution (input 32x32 grey, 2 classes): engine build, store and runner tests."""
    from tests.fixtures.bundles import conv_bundle

    return conv_bundle(tmp_path / "tiny")


@pytest.fixture(autouse=True)
def _reset_jetseg_logging():
    """The CLI binds the ``jetseg`` logger to the (captured) stderr of the test that ran it and stops it
    propagating; undo that afterwards, so that later tests' caplog sees jetseg's records (pytest 8, the
    JetPack 5 twin's, does not undo it for us)."""
    import logging

    yield
    logger = logging.getLogger("jetseg")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
