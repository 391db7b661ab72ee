"""Test tiers by hardware (markers in pyproject.toml).

- ``jetson``: skipped unless this is a Jetson (/etc/nv_tegra_release).
- ``trt``: skipped unless the tensorrt module can be found.
- ``gpu``: skipped unless an NVIDIA GPU device node exists.
- ``slow``: skipped unless ``--run-slow`` is given.

Skips happen only on missing hardware or a missing module, never on an import error, so a broken install
still fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from jetseg.optional import available


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow (soak tests)")


def _has_gpu() -> bool:
    return any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/dev/nvgpu/igpu0"))


def _reasons(config):
    return {
        "jetson": (Path("/etc/nv_tegra_release").exists(), "needs a Jetson (no /etc/nv_tegra_release); "
                   "run ./setup.sh test-device on the device"),
        "trt": (available("tensorrt"), "needs TensorRT (tensorrt module not found)"),
        "gpu": (_has_gpu(), "needs an NVIDIA GPU (no device node found)"),
        "slow": (config.getoption("--run-slow"), "slow test; run with --run-slow"),
    }


def pytest_collection_modifyitems(config, items):
    reasons = _reasons(config)
    for item in items:
        for marker, (ok, why) in reasons.items():
            if item.get_closest_marker(marker) is not None and not ok:
                item.add_marker(pytest.mark.skip(reason=why))
