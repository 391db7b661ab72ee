"""Version handling and feature decisions for TensorRT 8.5 / 8.6 / 10.x / 11.x (no TensorRT needed)."""
from __future__ import annotations

import pytest

from jetseg import trtcompat
from jetseg.errors import DeviceError, JetsegError
from jetseg.optional import available
from tests.fixtures import fake_tensorrt


def test_versions_compare_as_versions_not_strings():
    assert "10.0" < "5.1"  # the trap
    assert trtcompat.at_least("10.0", "5.1")
    assert trtcompat.at_least("8.5.2.2", "8.5.2")
    assert not trtcompat.at_least("8.5.2", "8.6")
    assert trtcompat.short_version("8.5.2.2") == "8.5.2"
    assert trtcompat.short_version("10.3") == "10.3.0"


def test_bad_version_is_a_clear_error():
    with pytest.raises(JetsegError, match="'eight' is not a TensorRT version; expected something like 8.5.2"):
        trtcompat.parse_version("eight")


@pytest.mark.parametrize("version, explicit, flags, deprecated, calib, calib_dep, monitor, strong", [
    ("8.5.2.2", True, True, False, True, False, False, False),
    ("8.6.1", True, True, False, True, False, False, False),
    ("10.0.1", False, True, False, True, False, True, False),
    ("10.3.0", False, True, False, True, True, True, False),
    ("10.12.0", False, True, True, True, True, True, False),
    ("11.0", False, False, False, False, False, True, True),
])
def test_feature_decisions(version, explicit, flags, deprecated, calib, calib_dep, monitor, strong):
    f = trtcompat.features(version)
    assert (f.explicit_batch_flag, f.precision_flags, f.precision_flags_deprecated, f.implicit_calibration,
            f.implicit_calibration_deprecated, f.progress_monitor, f.strongly_typed_only) == (
        explicit, flags, deprecated, calib, calib_dep, monitor, strong)


@pytest.mark.skipif(available("tensorrt"), reason="TensorRT is installed here")
def test_no_tensorrt_here_is_one_clear_line():
    assert trtcompat.installed_version() is None  # the stubs' namespace package does not count
    with pytest.raises(DeviceError) as err:
        trtcompat.load("testing")
    msg = str(err.value)
    assert "TensorRT is not installed on this machine (needed for testing)" in msg
    assert "python3-libnvinfer" in msg and "\n" not in msg


@pytest.fixture
def fake_trt(monkeypatch):
    """The stand-in tensorrt (8.5.2.2) on a machine without a usable GPU (its builder cannot be created)."""
    return fake_tensorrt.install(monkeypatch, "8.5.2.2", gpu=False)


class _Config:
    def __init__(self):
        self.flags = []

    def set_flag(self, flag):
        self.flags.append(flag.name)


def test_precision_flags_on_8_5_and_10(fake_trt):
    for version in ("8.5.2", "10.3.0"):
        cfg = _Config()
        assert trtcompat.set_precision(cfg, trtcompat.features(version), "fp16") == []
        assert cfg.flags == ["FP16"]
        cfg = _Config()
        trtcompat.set_precision(cfg, trtcompat.features(version), "int8", qdq=True)
        assert cfg.flags == ["FP16", "INT8"]
        cfg = _Config()
        trtcompat.set_precision(cfg, trtcompat.features(version), "fp32")
        assert cfg.flags == []


def test_precision_flags_deprecated_on_10_12(fake_trt):
    cfg = _Config()
    notes = trtcompat.set_precision(cfg, trtcompat.features("10.12.0"), "int8", qdq=True)
    assert cfg.flags == ["FP16", "INT8"]
    assert notes == ["BuilderFlag.INT8 is deprecated in TensorRT 10.12.0"]


def test_tensorrt_11_has_no_precision_flags(fake_trt):
    f11 = trtcompat.features("11.0")
    cfg = _Config()
    with pytest.raises(DeviceError, match="TensorRT 11.0 has no FP16 builder flag"):
        trtcompat.set_precision(cfg, f11, "fp16")
    with pytest.raises(DeviceError, match="build INT8 from a Q/DQ model made by 'jetseg calibrate --target tensorrt'"):
        trtcompat.set_precision(cfg, f11, "int8", qdq=False)
    notes = trtcompat.set_precision(cfg, f11, "int8", qdq=True)
    assert cfg.flags == [] and "strongly typed" in notes[0]


def test_explicit_batch_only_before_10(fake_trt):
    assert trtcompat.network_flags(trtcompat.features("8.5.2")) == 1
    assert trtcompat.network_flags(trtcompat.features("8.6.1")) == 1
    assert trtcompat.network_flags(trtcompat.features("10.3.0")) == 0
    assert trtcompat.network_flags(trtcompat.features("11.0")) == 0


def test_builder_without_gpu_becomes_device_error(fake_trt):
    with pytest.raises(DeviceError, match=r"TensorRT cannot create its builder \(pybind11::init\(\): factory "
                                          r"function returned nullptr\): no usable CUDA GPU here"):
        trtcompat.make_builder(object())


def test_the_one_opset_rule():
    assert trtcompat.MAX_OPSET == 17 and trtcompat.opset_problem(17) is None and trtcompat.opset_problem(13) is None
    assert trtcompat.opset_problem(18) == "opset 18; TensorRT 8.5 parses opset <= 17 (re-export with opset_version=17)"
