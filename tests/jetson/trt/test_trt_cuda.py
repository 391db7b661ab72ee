"""jetson/trt/cuda.py against the TensorRT 8.5.2 / pycuda double: dtypes without trt.nptype, context release."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from jetseg.errors import DeviceError
from jetseg.jetson.trt import cuda as jcuda
from tests.fixtures import fake_pycuda, fake_tensorrt


@pytest.fixture
def trt_852_numpy_124(monkeypatch):
    """TensorRT 8.5.2 in a venv where pip resolved numpy 1.24 (its nptype raises on every call there)."""
    trt = fake_tensorrt.make("8.5.2.2", numpy_version="1.24.4")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


def test_double_reproduces_the_8_5_2_nptype_failure(trt_852_numpy_124):
    with pytest.raises(AttributeError, match="no attribute 'bool'"):
        trt_852_numpy_124.nptype(trt_852_numpy_124.float32)


def test_numpy_dtype_does_not_use_nptype(trt_852_numpy_124):
    trt = trt_852_numpy_124
    assert jcuda.numpy_dtype(trt.float32) == np.float32
    assert jcuda.numpy_dtype(trt.float16) == np.float16
    assert jcuda.numpy_dtype(trt.int8) == np.int8
    assert jcuda.numpy_dtype(trt.int32) == np.int32
    assert jcuda.numpy_dtype(trt.DataType.BOOL) == np.bool_


def test_numpy_dtype_names_an_unknown_type():
    with pytest.raises(DeviceError, match="engine tensor type FP8 has no numpy equivalent here; expected one of"):
        jcuda.numpy_dtype("FP8")


def test_release_detaches_the_primary_context(monkeypatch):
    modules = fake_pycuda.make_pycuda()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    ctx = jcuda.CudaContext(0)
    primary = ctx.context
    ctx.release()
    assert modules["pycuda.driver"].detached == [primary]
    ctx.release()  # a second release does nothing
    assert modules["pycuda.driver"].detached == [primary]
