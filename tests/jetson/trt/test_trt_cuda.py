"""jetson/trt/cuda.py: dtypes without trt.nptype (TensorRT 8.5.2 double), and libcudart through ctypes against the
CUDA runtime double (tests/fixtures/fake_cudart.c, the signatures and codes of CUDA 11.4's cuda_runtime_api.h and
driver_types.h): memory, pinned host arrays, streams, events, copies, graphs, error codes, the library lookup."""
from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest

from jetseg.errors import DeviceError
from jetseg.jetson.trt import cuda as jcuda
from jetseg.jetson.trt import cudart
from tests.fixtures import fake_cudart, fake_tensorrt


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


@pytest.fixture
def cuda_double(monkeypatch):
    return fake_cudart.install(monkeypatch)


def test_every_declared_call_has_the_double_and_returns_an_error_code(cuda_double):
    cuda = cudart.runtime()
    assert cuda.path == str(fake_cudart.library_path())
    for name in cudart.SIGNATURES:
        function = getattr(cuda.lib, name)
        assert function.restype is ctypes.c_int, name  # cudaError_t
    assert cuda.runtime_version() == 11040


def test_pointers_keep_all_64_bits():
    # A handle or address declared c_int is cut to 32 bits; every pointer argument is c_void_p or a pointer to one.
    for name, argtypes in cudart.SIGNATURES.items():
        if name in ("cudaSetDevice", "cudaRuntimeGetVersion", "cudaGetDeviceCount", "cudaDeviceGetAttribute"):
            continue
        first = argtypes[0]
        assert first is not ctypes.c_int and first is not ctypes.c_uint, name


def test_context_reports_the_device(cuda_double):
    fake_cudart.set_device(1, "Xavier", sms=8, major=7, minor=2)
    ctx = jcuda.CudaContext(0)
    assert (ctx.name, ctx.multiprocessors, ctx.compute_capability) == ("Xavier", 8, (7, 2))
    with pytest.raises(DeviceError, match=r"CUDA device 1 does not exist \(1 found\)"):
        jcuda.CudaContext(1)


def test_no_device_is_a_device_error_with_the_cuda_error(cuda_double):
    fake_cudart.set_device(0)
    with pytest.raises(DeviceError, match=r"cudaGetDeviceCount failed: cudaErrorNoDevice \(100\): no CUDA-capable"):
        jcuda.CudaContext(0)
    assert jcuda.device_name() is None


def test_buffers_copy_through_the_device_and_free_everything(cuda_double):
    cuda = jcuda.CudaContext(0).cuda
    stream = jcuda.Stream(cuda)
    buffers = jcuda.Buffers(cuda, stream)
    src = buffers.add("input", (2, 3), np.float32, True)
    dst = buffers.add("output", (2, 3), np.float32, False)
    assert src.address != dst.address
    src.host[...] = np.arange(6, dtype=np.float32).reshape(2, 3)
    buffers.copy_in()
    cuda.memcpy_async(dst.device, src.device, src.nbytes, cudart.MEMCPY_DEVICE_TO_DEVICE, stream.handle)  # "the engine"
    buffers.copy_out()
    stream.synchronize()
    np.testing.assert_array_equal(dst.host, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert fake_cudart.live() == 5
    buffers.free()
    stream.destroy()
    assert fake_cudart.live() == 0 and buffers.items == {}


def test_a_copy_in_the_wrong_direction_is_refused(cuda_double):
    cuda = cudart.runtime()
    address, host = jcuda.pinned_array(cuda, (4,), np.float32)
    device = cuda.malloc(16)
    with pytest.raises(DeviceError, match=r"cudaMemcpy failed: cudaErrorInvalidValue \(1\): invalid argument"):
        cuda.memcpy(address, device, 16, cudart.MEMCPY_HOST_TO_DEVICE)  # device memory as the host source
    cuda.free(device)
    cuda.free_host(address)
    with pytest.raises(DeviceError, match="cudaFree failed: cudaErrorInvalidValue"):
        cuda.free(device)  # twice


def test_an_allocation_failure_frees_the_half_made_buffer(cuda_double):
    cuda = cudart.runtime()
    fake_cudart.fail_next("cudaMalloc", 2)
    with pytest.raises(DeviceError, match=r"cudaMalloc failed: cudaErrorMemoryAllocation \(2\): out of memory"):
        jcuda.Buffer(cuda, "input", (1, 1, 8, 8), np.float32, True)
    assert fake_cudart.live() == 0  # its pinned host array was given back


def test_dynamic_shape_is_refused_before_any_allocation(cuda_double):
    with pytest.raises(DeviceError, match=r"tensor 'input' has a dynamic shape \(-1, 1, 8, 8\)"):
        jcuda.Buffer(cudart.runtime(), "input", (-1, 1, 8, 8), np.float32, True)
    assert fake_cudart.live() == 0


def test_a_destroyed_stream_is_an_invalid_handle(cuda_double):
    stream = jcuda.Stream(cudart.runtime())
    handle = stream.handle
    stream.destroy()
    stream.handle = handle
    with pytest.raises(DeviceError, match=r"cudaStreamSynchronize failed: cudaErrorInvalidResourceHandle \(400\)"):
        stream.synchronize()


def test_timer_measures_between_two_events_and_destroys_them(cuda_double):
    cuda = cudart.runtime()
    stream = jcuda.Stream(cuda)
    timer = jcuda.Timer(cuda, stream)
    timer.start()
    assert timer.stop() >= 0.0
    timer.destroy()
    stream.destroy()
    assert fake_cudart.live() == 0


def test_graph_replays_the_captured_copies(cuda_double):
    cuda = cudart.runtime()
    stream = jcuda.Stream(cuda)
    buffers = jcuda.Buffers(cuda, stream)
    src = buffers.add("input", (4,), np.float32, True)
    dst = buffers.add("output", (4,), np.float32, False)

    def enqueue():
        buffers.copy_in()
        cuda.memcpy_async(dst.device, src.device, src.nbytes, cudart.MEMCPY_DEVICE_TO_DEVICE, stream.handle)
        buffers.copy_out()

    graph = jcuda.CudaGraph(stream)
    graph.capture(enqueue)
    assert fake_cudart.copies() == 0  # captured, not run
    for value in (1.0, 2.0):
        src.host[...] = value
        graph.launch()
        stream.synchronize()
        np.testing.assert_array_equal(dst.host, np.full(4, value, np.float32))
    graph.destroy()
    buffers.free()
    stream.destroy()
    assert fake_cudart.live() == 0


def test_a_failure_inside_the_capture_still_ends_it(cuda_double):
    stream = jcuda.Stream(cudart.runtime())
    graph = jcuda.CudaGraph(stream)

    def enqueue():
        raise RuntimeError("enqueue failed")

    with pytest.raises(RuntimeError, match="enqueue failed"):
        graph.capture(enqueue)
    assert not fake_cudart.capturing(stream.handle)
    graph.destroy()
    stream.destroy()
    assert fake_cudart.live() == 0


def test_uploader_reuses_one_allocation_and_frees_it(cuda_double):
    cuda = jcuda.CudaContext(0).cuda
    upload = jcuda.DeviceUploader(cuda)
    first = upload(np.ones((1, 1, 4, 4), np.float32))
    assert upload(np.zeros((1, 1, 4, 4), np.float32)) == first
    assert bytes(fake_cudart.device_bytes(first)) == bytes(64)
    upload.free()
    assert fake_cudart.live() == 0


def test_no_library_says_what_was_tried(monkeypatch):
    monkeypatch.setattr(cudart, "LIBRARIES", ("/nonexistent/libcudart.so.11.0",))
    monkeypatch.setattr("ctypes.util.find_library", lambda name: None)
    monkeypatch.setattr(cudart, "_RUNTIME", None)
    assert cudart.find_library() is None
    with pytest.raises(DeviceError, match="the CUDA runtime library was not found \\(tried /nonexistent/libcudart"):
        cudart.runtime()


def test_jetpack_5_library_is_looked_for_first():
    assert cudart.LIBRARIES[0] == "/usr/local/cuda-11.4/lib64/libcudart.so.11.0"


def test_the_real_libcudart_here_has_every_declared_call():
    # This CI machine may have a CUDA toolkit but no driver: the library loads, every call jetseg declares exists
    # in it, and the first device call fails with CUDA's own error, raised as a DeviceError.
    path = cudart.find_library()
    if path is None or "fake-cudart" in path:
        pytest.skip("no real libcudart on this machine")
    cuda = cudart.CudaRuntime(path)
    assert cuda.version >= 11000
    try:
        count = cuda.device_count()
    except DeviceError as exc:
        assert str(exc).startswith("CUDA call cudaGetDeviceCount failed: cudaError")
    else:
        assert count >= 0
