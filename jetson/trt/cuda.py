"""CUDA for TensorRT through the CUDA runtime library (libcudart) and ctypes: the ONE place jetseg touches device
memory from Python. No compiled extension (pycuda needed python3-dev, build-essential and nvcc on a Jetson).

* :mod:`jetseg.jetson.trt.cudart` loads libcudart (on JetPack 5 ``/usr/local/cuda-11.4/lib64/libcudart.so.11.0``)
  with each call typed as CUDA 11.4's ``include/cuda_runtime_api.h`` declares it; every failed call raises a
  :class:`~jetseg.errors.DeviceError`.
* :class:`CudaContext` selects the device (``cudaSetDevice``: the runtime makes its primary context current on the
  calling thread), so a runner activated on one thread can infer on another (the daemon's inference thread).
* :class:`Buffers` owns one pinned host array (``cudaMallocHost``) and one device allocation (``cudaMalloc``) per
  engine I/O tensor and frees them; :class:`Stream` is the single CUDA stream, given to TensorRT as an ``int``;
  :class:`Timer` measures GPU time between two events.
* :class:`CudaGraph` optionally captures copy-in, the engine and copy-out into a CUDA graph and replays it.

Nothing is loaded at import: the ``trt`` runner, the engine builder and ``jetseg doctor`` call in when needed.
Checked here against a double that follows cuda_runtime_api.h (tests/fixtures/fake_cudart.c), not against a GPU.
"""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from jetseg.errors import DeviceError
from jetseg.jetson.trt.cudart import (
    ATTR_COMPUTE_CAPABILITY_MAJOR,
    ATTR_COMPUTE_CAPABILITY_MINOR,
    ATTR_MULTIPROCESSOR_COUNT,
    CAPTURE_MODE_GLOBAL,
    MEMCPY_DEVICE_TO_HOST,
    MEMCPY_HOST_TO_DEVICE,
    CudaRuntime,
    runtime,
)

if TYPE_CHECKING:
    import tensorrt

class CudaContext:
    """CUDA device ``index`` made current with ``with ctx:`` around GPU work (``cudaSetDevice`` on the calling
    thread: the runtime then uses the device's primary context there)."""

    def __init__(self, index: int = 0) -> None:
        self.cuda = runtime()
        count = self.cuda.device_count()
        if count <= index:
            raise DeviceError("CUDA device %d does not exist (%d found)" % (index, count))
        self.index = index
        self.cuda.set_device(index)

    @property
    def name(self) -> str:
        return self.cuda.device_name(self.index)

    @property
    def multiprocessors(self) -> int:
        """The GPU's SM count."""
        return self.cuda.attribute(ATTR_MULTIPROCESSOR_COUNT, self.index)

    @property
    def compute_capability(self) -> Tuple[int, int]:
        return (self.cuda.attribute(ATTR_COMPUTE_CAPABILITY_MAJOR, self.index),
                self.cuda.attribute(ATTR_COMPUTE_CAPABILITY_MINOR, self.index))

    def __enter__(self) -> CudaContext:
        self.cuda.set_device(self.index)
        return self

    def __exit__(self, *exc: Any) -> None:
        pass  # the runtime keeps the primary context current on this thread; nothing to pop

    def release(self) -> None:
        """Nothing to give back: the runtime owns the primary context for the process (``cudaDeviceReset`` would
        destroy it under every other user in the process, e.g. a second runner)."""


class Stream:
    """One CUDA stream (``cudaStreamCreate``); :meth:`destroy` when done."""

    def __init__(self, cuda: CudaRuntime) -> None:
        self.cuda = cuda
        self.handle = cuda.stream_create()

    def synchronize(self) -> None:
        self.cuda.stream_synchronize(self.handle)

    def destroy(self) -> None:
        if self.handle:
            self.cuda.stream_destroy(self.handle)
            self.handle = 0


class Timer:
    """GPU time between :meth:`start` and :meth:`stop` on a stream, from two CUDA events, in milliseconds."""

    def __init__(self, cuda: CudaRuntime, stream: Stream) -> None:
        self.cuda = cuda
        self.stream = stream
        self.events = [cuda.event_create()]
        self.events.append(cuda.event_create())

    def start(self) -> None:
        self.cuda.event_record(self.events[0], self.stream.handle)

    def stop(self) -> float:
        self.cuda.event_record(self.events[1], self.stream.handle)
        self.cuda.event_synchronize(self.events[1])
        return self.cuda.elapsed_ms(self.events[0], self.events[1])

    def destroy(self) -> None:
        while self.events:
            self.cuda.event_destroy(self.events.pop())


def pinned_array(cuda: CudaRuntime, shape: Tuple[int, ...], dtype: Any) -> Tuple[int, np.ndarray]:
    """``(address, array)``: a numpy array over page-locked host memory from ``cudaMallocHost``; free the address
    with ``cuda.free_host`` once nothing uses the array."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    address = cuda.malloc_host(nbytes)
    raw = (ctypes.c_uint8 * max(1, nbytes)).from_address(address)
    array = np.frombuffer(raw, dtype=np.uint8, count=nbytes).view(dtype).reshape(shape)
    return address, array


class Buffer:
    """A pinned host array and a device allocation of the same size, for one tensor."""

    def __init__(self, cuda: CudaRuntime, name: str, shape: Tuple[int, ...], dtype: Any, is_input: bool) -> None:
        self.cuda = cuda
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.is_input = is_input
        if any(d < 0 for d in self.shape):
            raise DeviceError("tensor %r has a dynamic shape %s; jetseg builds static-shape engines (rebuild it "
                              "with 'jetseg build')" % (name, self.shape))
        self.host_address, self.host = pinned_array(cuda, self.shape, dtype)
        try:
            self.device = cuda.malloc(self.host.nbytes)
        except DeviceError:
            cuda.free_host(self.host_address)
            raise

    @property
    def address(self) -> int:
        return self.device

    @property
    def nbytes(self) -> int:
        return int(self.host.nbytes)

    def free(self) -> None:
        if self.device:
            self.cuda.free(self.device)
            self.device = 0
        if self.host_address:
            self.host = np.empty(0, self.host.dtype)  # no array may outlive the memory under it
            self.cuda.free_host(self.host_address)
            self.host_address = 0


class Buffers:
    """Host/device buffers for every I/O tensor, and the copies between them on one stream."""

    def __init__(self, cuda: CudaRuntime, stream: Stream) -> None:
        self.cuda = cuda
        self.stream = stream
        self.items: Dict[str, Buffer] = {}

    def add(self, name: str, shape: Tuple[int, ...], dtype: Any, is_input: bool) -> Buffer:
        buf = Buffer(self.cuda, name, shape, dtype, is_input)
        self.items[name] = buf
        return buf

    @property
    def inputs(self) -> List[Buffer]:
        return [b for b in self.items.values() if b.is_input]

    @property
    def outputs(self) -> List[Buffer]:
        return [b for b in self.items.values() if not b.is_input]

    def copy_in(self) -> None:
        for buf in self.inputs:
            self.cuda.memcpy_async(buf.device, buf.host_address, buf.nbytes, MEMCPY_HOST_TO_DEVICE, self.stream.handle)

    def copy_out(self) -> None:
        for buf in self.outputs:
            self.cuda.memcpy_async(buf.host_address, buf.device, buf.nbytes, MEMCPY_DEVICE_TO_HOST, self.stream.handle)

    def free(self) -> None:
        """Free every buffer (all are tried; the first failure is raised after)."""
        failure: Optional[DeviceError] = None
        for buf in self.items.values():
            try:
                buf.free()
            except DeviceError as exc:
                failure = failure or exc
        self.items.clear()
        if failure is not None:
            raise failure


class CudaGraph:
    """Capture work issued on ``stream`` into a CUDA graph and replay it (runtime API, CUDA 11.4 signatures).

    Use: ``graph.capture(fn)`` runs ``fn()`` (which must only enqueue work on the stream) under capture,
    then ``graph.launch()`` replays it. Unverified on a device: enable with the runner option ``cuda_graph``.
    """

    def __init__(self, stream: Stream) -> None:
        self.cuda = stream.cuda
        self.stream = stream
        self.graph = 0
        self.exec = 0

    def capture(self, enqueue: Callable[[], None]) -> None:
        self.cuda.call("cudaStreamBeginCapture", ctypes.c_void_p(self.stream.handle), CAPTURE_MODE_GLOBAL)
        graph = ctypes.c_void_p()
        try:
            enqueue()
        finally:  # end the capture whatever happened, or the stream stays unusable
            self.cuda.call("cudaStreamEndCapture", ctypes.c_void_p(self.stream.handle), ctypes.byref(graph))
            self.graph = int(graph.value or 0)
        executable = ctypes.c_void_p()
        if self.cuda.version >= 12000:
            self.cuda.call("cudaGraphInstantiate", ctypes.byref(executable), ctypes.c_void_p(self.graph), 0)
        else:
            self.cuda.call("cudaGraphInstantiate", ctypes.byref(executable), ctypes.c_void_p(self.graph), None, None, 0)
        self.exec = int(executable.value or 0)

    def launch(self) -> None:
        self.cuda.call("cudaGraphLaunch", ctypes.c_void_p(self.exec), ctypes.c_void_p(self.stream.handle))

    def destroy(self) -> None:
        if self.exec:
            self.cuda.call("cudaGraphExecDestroy", ctypes.c_void_p(self.exec))
            self.exec = 0
        if self.graph:
            self.cuda.call("cudaGraphDestroy", ctypes.c_void_p(self.graph))
            self.graph = 0


#: TensorRT DataType member name -> numpy dtype. Our own table, never ``trt.nptype``: in TensorRT 8.5.2
#: (python/packaging/tensorrt/__init__.py) ``nptype`` builds a dict containing ``np.bool``, which numpy 1.24
#: removed, so every call raises under numpy >= 1.24 (NVIDIA/TensorRT#2557, fixed in 8.6).
_NUMPY_OF_TRT = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32,
                 "BOOL": np.bool_, "UINT8": np.uint8, "INT64": np.int64}


def numpy_dtype(dtype: tensorrt.DataType) -> Any:
    """A TensorRT DataType (``trt.float32``, ``trt.DataType.HALF``, ...) as a numpy dtype."""
    name = getattr(dtype, "name", None) or str(dtype).split(".")[-1]
    if name not in _NUMPY_OF_TRT:
        raise DeviceError("engine tensor type %s has no numpy equivalent here; expected one of %s"
                          % (dtype, ", ".join(sorted(_NUMPY_OF_TRT))))
    return np.dtype(_NUMPY_OF_TRT[name])


def device_name(index: int = 0) -> Optional[str]:
    """The CUDA device's name, or None when there is no CUDA runtime library or no usable device."""
    try:
        return CudaContext(index).name
    except DeviceError:
        return None


class DeviceUploader:
    """``to_device(array) -> int``: copies a host array to one reused device allocation and returns its pointer.

    For the on-device INT8 calibrator (engines/calibrator.py): TensorRT reads the batch from the pointer
    until the next call, so the allocation (and the last array) stay referenced here. Call with the CUDA context
    current; :meth:`free` releases the memory.
    """

    def __init__(self, cuda: CudaRuntime, context: Optional[CudaContext] = None) -> None:
        self.cuda = cuda
        self.context = context
        self._mem = 0
        self._nbytes = 0
        self._last: Optional[np.ndarray] = None

    def __call__(self, array: np.ndarray) -> int:
        host = np.ascontiguousarray(array)
        if not self._mem or host.nbytes > self._nbytes:
            self.free()
            self._mem = self.cuda.malloc(host.nbytes)
            self._nbytes = host.nbytes
        self.cuda.memcpy(self._mem, host.ctypes.data, host.nbytes, MEMCPY_HOST_TO_DEVICE)
        self._last = host
        return self._mem

    def free(self) -> None:
        if self._mem:
            self.cuda.free(self._mem)
            self._mem = 0
            self._nbytes = 0
            self._last = None
