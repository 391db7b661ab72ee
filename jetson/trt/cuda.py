"""CUDA memory for TensorRT, through pycuda: the ONE place jetseg touches device memory from Python.

* :class:`CudaContext` retains the device's primary context and pushes it around every use, so a runner
  activated on one thread can infer on another (the daemon's inference thread).
* :class:`Buffers` owns one page-locked host array and one device allocation per engine I/O tensor and keeps
  Python references to all of them for as long as TensorRT may use their addresses.
* :class:`Stream` is the single CUDA stream; TensorRT gets its handle as an ``int``.
* :class:`CudaGraph` optionally captures copy-in, the engine and copy-out into a CUDA graph (driver API via
  ctypes, ``cuGraphInstantiateWithFlags`` needs CUDA >= 11.4) and replays it.

pycuda cannot be imported on a machine without the NVIDIA driver; everything here is imported lazily by the
``trt`` runner at activation.
"""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.errors import DeviceError
from jetseg.optional import require

if TYPE_CHECKING:
    import tensorrt


def _driver() -> Any:
    require("pycuda", "CUDA memory for the trt backend")
    import pycuda.driver as cuda

    try:
        cuda.init()
    except cuda.Error as exc:
        raise DeviceError("CUDA cannot initialise (%s): no usable GPU here; check 'jetseg doctor'" % exc) from None
    return cuda


class CudaContext:
    """The primary context of CUDA device ``index``, pushed with ``with ctx:`` around GPU work."""

    def __init__(self, index: int = 0) -> None:
        self.cuda = _driver()
        if self.cuda.Device.count() <= index:
            raise DeviceError("CUDA device %d does not exist (%d found)" % (index, self.cuda.Device.count()))
        self.device = self.cuda.Device(index)
        self.context = self.device.retain_primary_context()

    @property
    def name(self) -> str:
        return str(self.device.name())

    @property
    def multiprocessors(self) -> int:
        """The GPU's SM count (0 when the driver does not say)."""
        attrs = getattr(self.cuda, "device_attribute", None)
        if attrs is None or not hasattr(attrs, "MULTIPROCESSOR_COUNT"):
            return 0
        return int(self.device.get_attribute(attrs.MULTIPROCESSOR_COUNT))

    @property
    def compute_capability(self) -> Tuple[int, int]:
        major, minor = self.device.compute_capability()
        return int(major), int(minor)

    def __enter__(self) -> CudaContext:
        self.context.push()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cuda.Context.pop()

    def release(self) -> None:
        """Give the primary context back (``detach``: pycuda's release of a retained primary context)."""
        if self.context is not None:
            self.context.detach()
            self.context = None


class Stream:
    """One CUDA stream (create it with the context pushed)."""

    def __init__(self, cuda: Any) -> None:
        self.cuda = cuda
        self.stream = cuda.Stream()

    @property
    def handle(self) -> int:
        return int(self.stream.handle)

    def synchronize(self) -> None:
        self.stream.synchronize()


class Buffer:
    """A page-locked host array and a device allocation of the same size, for one tensor."""

    def __init__(self, cuda: Any, name: str, shape: Tuple[int, ...], dtype: Any, is_input: bool) -> None:
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.is_input = is_input
        if any(d < 0 for d in self.shape):
            raise DeviceError("tensor %r has a dynamic shape %s; jetseg builds static-shape engines (rebuild it "
                              "with 'jetseg build')" % (name, self.shape))
        self.host = cuda.pagelocked_empty(self.shape, dtype)
        self.device = cuda.mem_alloc(max(1, self.host.nbytes))

    @property
    def address(self) -> int:
        return int(self.device)

    def free(self) -> None:
        self.device.free()


class Buffers:
    """Host/device buffers for every I/O tensor, and the copies between them on one stream."""

    def __init__(self, cuda: Any, stream: Stream) -> None:
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
            self.cuda.memcpy_htod_async(buf.device, buf.host, self.stream.stream)

    def copy_out(self) -> None:
        for buf in self.outputs:
            self.cuda.memcpy_dtoh_async(buf.host, buf.device, self.stream.stream)

    def free(self) -> None:
        for buf in self.items.values():
            buf.free()
        self.items.clear()


# ---------------------------------------------------------------------------------------------- CUDA graphs
_CAPTURE_MODE_GLOBAL = 0


class CudaGraph:
    """Capture work issued on ``stream`` into a CUDA graph and replay it (CUDA driver API through ctypes).

    Use: ``graph.capture(fn)`` runs ``fn()`` (which must only enqueue work on the stream) under capture,
    then ``graph.launch()`` replays it. Unverified on a device: enable with the runner option ``cuda_graph``.
    """

    def __init__(self, stream: Stream) -> None:
        try:
            self.lib = ctypes.CDLL("libcuda.so.1")
        except OSError as exc:
            raise DeviceError("CUDA graphs need the CUDA driver library libcuda.so.1 (%s)" % exc) from None
        if not hasattr(self.lib, "cuGraphInstantiateWithFlags"):
            raise DeviceError("this CUDA driver has no cuGraphInstantiateWithFlags (needs CUDA >= 11.4); run "
                              "without cuda_graph")
        self.stream = stream
        self.graph = ctypes.c_void_p()
        self.exec = ctypes.c_void_p()

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            raise DeviceError("CUDA graph %s failed with CUresult %d; run without cuda_graph" % (what, result))

    def capture(self, enqueue: Any) -> None:
        handle = ctypes.c_void_p(self.stream.handle)
        self._check(self.lib.cuStreamBeginCapture_v2(handle, ctypes.c_int(_CAPTURE_MODE_GLOBAL)), "capture start")
        try:
            enqueue()
        finally:
            self._check(self.lib.cuStreamEndCapture(handle, ctypes.byref(self.graph)), "capture end")
        self._check(self.lib.cuGraphInstantiateWithFlags(ctypes.byref(self.exec), self.graph,
                                                         ctypes.c_ulonglong(0)), "instantiation")

    def launch(self) -> None:
        self._check(self.lib.cuGraphLaunch(self.exec, ctypes.c_void_p(self.stream.handle)), "launch")

    def destroy(self) -> None:
        if self.exec:
            self.lib.cuGraphExecDestroy(self.exec)
            self.exec = ctypes.c_void_p()
        if self.graph:
            self.lib.cuGraphDestroy(self.graph)
            self.graph = ctypes.c_void_p()


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
    """The CUDA device's name via pycuda, or None when pycuda or the driver is unavailable."""
    from jetseg.optional import available

    if not available("pycuda"):
        return None
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

    def __init__(self, cuda: Any, context: Optional[CudaContext] = None) -> None:
        self.cuda = cuda
        self.context = context
        self._mem: Any = None
        self._nbytes = 0
        self._last: Optional[np.ndarray] = None

    def __call__(self, array: np.ndarray) -> int:
        host = np.ascontiguousarray(array)
        if self._mem is None or host.nbytes > self._nbytes:
            if self._mem is not None:
                self._mem.free()
            self._mem = self.cuda.mem_alloc(max(1, host.nbytes))
            self._nbytes = host.nbytes
        self.cuda.memcpy_htod(self._mem, host)
        self._last = host
        return int(self._mem)

    def free(self) -> None:
        if self._mem is not None:
            self._mem.free()
            self._mem = None
            self._last = None
