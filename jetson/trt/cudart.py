"""The CUDA runtime library (libcudart) through ctypes: loading it and one typed method per call jetseg makes.

On JetPack 5 the library is ``/usr/local/cuda-11.4/lib64/libcudart.so.11.0``; each call's argument types are
declared as in CUDA 11.4's ``include/cuda_runtime_api.h`` and every non-zero ``cudaError_t`` becomes a
:class:`~jetseg.errors.DeviceError` naming the call, the code and ``cudaGetErrorString``. What uses it (contexts,
buffers, streams, graphs) is :mod:`jetseg.jetson.trt.cuda`. Nothing is loaded at import.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any, Dict, Optional, Sequence, Tuple

from jetseg.errors import DeviceError

#: Where libcudart is looked for, in order: JetPack 5 (CUDA 11.4), the toolkit's usual link, then the loader's path.
LIBRARIES: Tuple[str, ...] = ("/usr/local/cuda-11.4/lib64/libcudart.so.11.0", "/usr/local/cuda/lib64/libcudart.so",
                              "libcudart.so.11.0", "libcudart.so.12", "libcudart.so")

# include/driver_types.h (CUDA 11.4): enum cudaMemcpyKind, enum cudaDeviceAttr, enum cudaStreamCaptureMode.
MEMCPY_HOST_TO_DEVICE = 1
MEMCPY_DEVICE_TO_HOST = 2
MEMCPY_DEVICE_TO_DEVICE = 3
ATTR_MULTIPROCESSOR_COUNT = 16
ATTR_COMPUTE_CAPABILITY_MAJOR = 75
ATTR_COMPUTE_CAPABILITY_MINOR = 76
CAPTURE_MODE_GLOBAL = 0
#: cudaDeviceProp is far smaller than this in CUDA 11.4; its first member is ``char name[256]``.
_DEVICE_PROP_BYTES = 4096

_p = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)
_int, _size = ctypes.c_int, ctypes.c_size_t
#: Each call jetseg makes: its argument types, as declared in CUDA 11.4's include/cuda_runtime_api.h. Every one
#: returns ``cudaError_t`` (an enum: ``c_int``). Handles (cudaStream_t, cudaEvent_t, cudaGraph_t,
#: cudaGraphExec_t) are pointers: ``c_void_p``, never ``c_int``, or 64-bit addresses are cut in half.
SIGNATURES: Dict[str, Sequence[Any]] = {
    "cudaRuntimeGetVersion": [ctypes.POINTER(_int)],                  # (int *runtimeVersion)
    "cudaGetDeviceCount": [ctypes.POINTER(_int)],                     # (int *count)
    "cudaSetDevice": [_int],                                          # (int device)
    "cudaDeviceGetAttribute": [ctypes.POINTER(_int), _int, _int],     # (int *value, cudaDeviceAttr attr, int device)
    "cudaGetDeviceProperties": [_p, _int],                            # (cudaDeviceProp *prop, int device)
    "cudaMalloc": [_pp, _size],                                       # (void **devPtr, size_t size)
    "cudaFree": [_p],                                                 # (void *devPtr)
    "cudaMallocHost": [_pp, _size],                                   # (void **ptr, size_t size)
    "cudaFreeHost": [_p],                                             # (void *ptr)
    "cudaMemcpy": [_p, _p, _size, _int],                              # (dst, src, count, cudaMemcpyKind kind)
    "cudaMemcpyAsync": [_p, _p, _size, _int, _p],                     # (dst, src, count, kind, cudaStream_t)
    "cudaStreamCreate": [_pp],                                        # (cudaStream_t *pStream)
    "cudaStreamDestroy": [_p],                                        # (cudaStream_t stream)
    "cudaStreamSynchronize": [_p],                                    # (cudaStream_t stream)
    "cudaEventCreate": [_pp],                                         # (cudaEvent_t *event)
    "cudaEventDestroy": [_p],                                         # (cudaEvent_t event)
    "cudaEventRecord": [_p, _p],                                      # (cudaEvent_t event, cudaStream_t stream)
    "cudaEventSynchronize": [_p],                                     # (cudaEvent_t event)
    "cudaEventElapsedTime": [ctypes.POINTER(ctypes.c_float), _p, _p],  # (float *ms, cudaEvent_t, cudaEvent_t)
    "cudaStreamBeginCapture": [_p, _int],                             # (cudaStream_t, cudaStreamCaptureMode)
    "cudaStreamEndCapture": [_p, _pp],                                # (cudaStream_t, cudaGraph_t *pGraph)
    # CUDA 11.4: (cudaGraphExec_t *pGraphExec, cudaGraph_t, cudaGraphNode_t *pErrorNode, char *pLogBuffer,
    # size_t bufferSize); CUDA 12 changed it to three arguments.
    "cudaGraphInstantiate": [_pp, _p, _pp, ctypes.c_char_p, _size],
    "cudaGraphLaunch": [_p, _p],                                      # (cudaGraphExec_t, cudaStream_t)
    "cudaGraphExecDestroy": [_p],                                     # (cudaGraphExec_t)
    "cudaGraphDestroy": [_p],                                         # (cudaGraph_t)
}


def find_library(candidates: Optional[Sequence[str]] = None) -> Optional[str]:
    """The first of ``candidates`` (default :data:`LIBRARIES`) that loads, then
    ``ctypes.util.find_library("cudart")``; None when none does."""
    for name in list(LIBRARIES if candidates is None else candidates) + [ctypes.util.find_library("cudart") or ""]:
        if not name:
            continue
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return name
    return None


class CudaRuntime:
    """The CUDA runtime library with typed calls; every failed call raises a DeviceError.

    Args:
        path: the library to load; default: the first of :data:`LIBRARIES` that loads.
    """

    def __init__(self, path: Optional[str] = None) -> None:
        found = path or find_library()
        if found is None:
            raise DeviceError("the CUDA runtime library was not found (tried %s); on a Jetson install JetPack's CUDA "
                              "(sudo apt-get install nvidia-jetpack), elsewhere use a CPU backend"
                              % ", ".join(LIBRARIES))
        try:
            self.lib = ctypes.CDLL(found)
        except OSError as exc:
            raise DeviceError("the CUDA runtime library %s does not load (%s); check 'jetseg doctor'"
                              % (found, exc)) from None
        self.path = found
        missing = [name for name in SIGNATURES if not hasattr(self.lib, name)]
        if missing:
            raise DeviceError("%s lacks %s; expected the CUDA 11.4 runtime or newer" % (found, ", ".join(missing)))
        for name, argtypes in SIGNATURES.items():
            function = getattr(self.lib, name)
            function.argtypes = list(argtypes)
            function.restype = ctypes.c_int
        self.version = self.runtime_version()
        if self.version >= 12000:  # CUDA 12 (JetPack 6): (cudaGraphExec_t *, cudaGraph_t, unsigned long long flags)
            self.lib.cudaGraphInstantiate.argtypes = [_pp, _p, ctypes.c_ulonglong]
        for name in ("cudaGetErrorString", "cudaGetErrorName"):  # const char *(cudaError_t error)
            getattr(self.lib, name).argtypes = [ctypes.c_int]
            getattr(self.lib, name).restype = ctypes.c_char_p

    def error_text(self, code: int) -> str:
        """``cudaErrorMemoryAllocation (2): out of memory``."""
        name = (self.lib.cudaGetErrorName(code) or b"cudaError").decode()
        text = (self.lib.cudaGetErrorString(code) or b"").decode()
        return "%s (%d): %s" % (name, code, text)

    def call(self, name: str, *args: Any) -> None:
        """Call ``name``; a non-zero cudaError_t raises a DeviceError that names the call and the error."""
        code = int(getattr(self.lib, name)(*args))
        if code != 0:
            raise DeviceError("CUDA call %s failed: %s" % (name, self.error_text(code)))

    def _pointer(self, name: str, *args: Any) -> int:
        out = ctypes.c_void_p()
        self.call(name, ctypes.byref(out), *args)
        if not out.value:
            raise DeviceError("CUDA call %s returned success but a null pointer" % name)
        return int(out.value)

    # -- devices
    def runtime_version(self) -> int:
        value = ctypes.c_int()
        self.call("cudaRuntimeGetVersion", ctypes.byref(value))
        return value.value

    def device_count(self) -> int:
        value = ctypes.c_int()
        self.call("cudaGetDeviceCount", ctypes.byref(value))
        return value.value

    def set_device(self, index: int) -> None:
        self.call("cudaSetDevice", index)

    def attribute(self, attr: int, index: int) -> int:
        value = ctypes.c_int()
        self.call("cudaDeviceGetAttribute", ctypes.byref(value), attr, index)
        return value.value

    def device_name(self, index: int) -> str:
        prop = ctypes.create_string_buffer(_DEVICE_PROP_BYTES)
        self.call("cudaGetDeviceProperties", prop, index)
        return prop.raw[:256].split(b"\0", 1)[0].decode(errors="replace")

    # -- memory
    def malloc(self, nbytes: int) -> int:
        return self._pointer("cudaMalloc", max(1, int(nbytes)))

    def free(self, address: int) -> None:
        self.call("cudaFree", ctypes.c_void_p(address))

    def malloc_host(self, nbytes: int) -> int:
        return self._pointer("cudaMallocHost", max(1, int(nbytes)))

    def free_host(self, address: int) -> None:
        self.call("cudaFreeHost", ctypes.c_void_p(address))

    def memcpy(self, dst: int, src: int, nbytes: int, kind: int) -> None:
        self.call("cudaMemcpy", ctypes.c_void_p(dst), ctypes.c_void_p(src), nbytes, kind)

    def memcpy_async(self, dst: int, src: int, nbytes: int, kind: int, stream: int) -> None:
        self.call("cudaMemcpyAsync", ctypes.c_void_p(dst), ctypes.c_void_p(src), nbytes, kind, ctypes.c_void_p(stream))

    # -- streams and events
    def stream_create(self) -> int:
        return self._pointer("cudaStreamCreate")

    def stream_destroy(self, stream: int) -> None:
        self.call("cudaStreamDestroy", ctypes.c_void_p(stream))

    def stream_synchronize(self, stream: int) -> None:
        self.call("cudaStreamSynchronize", ctypes.c_void_p(stream))

    def event_create(self) -> int:
        return self._pointer("cudaEventCreate")

    def event_destroy(self, event: int) -> None:
        self.call("cudaEventDestroy", ctypes.c_void_p(event))

    def event_record(self, event: int, stream: int) -> None:
        self.call("cudaEventRecord", ctypes.c_void_p(event), ctypes.c_void_p(stream))

    def event_synchronize(self, event: int) -> None:
        self.call("cudaEventSynchronize", ctypes.c_void_p(event))

    def elapsed_ms(self, start: int, end: int) -> float:
        value = ctypes.c_float()
        self.call("cudaEventElapsedTime", ctypes.byref(value), ctypes.c_void_p(start), ctypes.c_void_p(end))
        return float(value.value)


_RUNTIME: Optional[CudaRuntime] = None


def runtime() -> CudaRuntime:
    """The process's CUDA runtime (loaded on first use)."""
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = CudaRuntime()
    return _RUNTIME
