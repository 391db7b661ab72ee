"""Stand-ins for ``tensorrt`` and ``pycuda``, so the engine-building and runner glue run here without a GPU.

It models only what jetseg calls (named-tensor API, builder config, ONNX parser, DLA queries) and records
what it was asked to do; the "engine" it serializes is JSON of those settings. Behaviour that differs between
TensorRT versions follows the version it is created with (EXPLICIT_BATCH before 10, no precision flags in 11,
IProgressMonitor from 10). An engine "executes" its ONNX model with ONNX Runtime, reading and writing the
stand-in device memory of :func:`make_pycuda`, so the runner's buffer handling is checked end to end.
Real TensorRT and pycuda are exercised by test_on_device.py on the Jetson.
"""
from __future__ import annotations

import base64
import enum
import importlib.machinery
import json
import types
from typing import Any, Dict, List, Optional

import numpy as np
import onnx
from packaging.version import Version


class _Enum(enum.Enum):
    def __int__(self) -> int:
        return int(self.value)


def make(version: str = "8.5.2.2", dla_cores: int = 2, gpu: bool = True) -> types.ModuleType:
    major = Version(version).release[0]
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None, origin="fake_tensorrt")
    trt.__version__ = version
    trt.calls = []  # what was asked, in order

    flags = ["FP16", "INT8", "GPU_FALLBACK"] if major < 11 else ["GPU_FALLBACK"]
    trt.BuilderFlag = _Enum("BuilderFlag", flags)
    trt.NetworkDefinitionCreationFlag = _Enum("NetworkDefinitionCreationFlag",
                                              {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1} if major < 11
                                              else {"STRONGLY_TYPED": 1})
    trt.MemoryPoolType = _Enum("MemoryPoolType", {"WORKSPACE": 0})
    trt.DeviceType = _Enum("DeviceType", {"GPU": 0, "DLA": 1})
    trt.TensorIOMode = _Enum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})
    trt.DataType = _Enum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3})
    trt.float32, trt.float16, trt.int8, trt.int32 = (trt.DataType.FLOAT, trt.DataType.HALF, trt.DataType.INT8,
                                                     trt.DataType.INT32)

    class Logger:
        INFO, WARNING = "INFO", "WARNING"

        def __init__(self, severity: str = "WARNING") -> None:
            self.severity = severity

    class Layer:
        def __init__(self, node: Any) -> None:
            self.name = node.name
            self.type = "LayerType." + node.op_type.upper()
            self.node = node

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.layers: List[Layer] = []
            self.io: List[Dict[str, Any]] = []

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> Layer:
            return self.layers[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            self.network = network
            self.errors: List[str] = []

        def parse(self, data: bytes) -> bool:
            model = onnx.load_from_string(bytes(data))
            if not model.graph.node:
                self.errors.append("graph has no nodes")
                return False
            self.network.layers = [Layer(n) for n in model.graph.node]
            shapes = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
            self.network.io = ([{"name": v.name, "mode": "INPUT", "shape": shapes(v)} for v in model.graph.input]
                               + [{"name": v.name, "mode": "OUTPUT", "shape": shapes(v)} for v in model.graph.output])
            self.network.ops = sorted({n.op_type for n in model.graph.node})
            self.network.onnx = bytes(data)
            return True

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> str:
            return self.errors[i]

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = bytes(data) or b"fresh-timing-cache"

        def serialize(self) -> bytes:
            return self.data + b"+"

    class Config:
        def __init__(self) -> None:
            self.flags: List[str] = []
            self.pool: Dict[str, int] = {}
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            self.int8_calibrator: Any = None
            self.progress_monitor: Any = None
            self.device_types: Dict[str, str] = {}
            self.cache: Optional[TimingCache] = None

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self.pool[pool.name] = size

        def set_flag(self, flag: Any) -> None:
            self.flags.append(flag.name)

        def can_run_on_DLA(self, layer: Layer) -> bool:
            pads = [a for a in layer.node.attribute if a.name == "pads"]
            return layer.node.op_type in ("Conv", "Relu") or (layer.node.op_type == "ConvTranspose" and not pads)

        def set_device_type(self, layer: Layer, device: Any) -> None:
            self.device_types[layer.name] = device.name

        def create_timing_cache(self, data: bytes) -> TimingCache:
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            assert self.cache is not None
            return self.cache

    class Builder:
        def __init__(self, logger: Logger) -> None:
            if not gpu:
                raise TypeError("pybind11::init(): factory function returned nullptr")
            self.num_DLA_cores = dla_cores

        def create_network(self, flags: int = 0) -> Network:
            if major >= 11 and flags & 1:
                raise AttributeError("EXPLICIT_BATCH was removed")
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            if config.progress_monitor is not None:
                config.progress_monitor.phase_start("Building engine", None, 2)
                config.progress_monitor.step_complete("Building engine", 0)
                config.progress_monitor.phase_finish("Building engine")
            calib = config.int8_calibrator
            batches = 0
            if calib is not None and calib.read_calibration_cache() is None:  # calibrate from batches
                while True:
                    pointers = calib.get_batch(["input"])
                    if pointers is None:
                        break
                    assert MEMORY[int(pointers[0])].size == 4 * 32 * 32  # one (1, 1, 32, 32) float32 batch
                    batches += 1
                calib.write_calibration_cache(b"TRT-%d-EntropyCalibration2\ninput: 3c000000\n"
                                              % (Version(version).release[0] * 1000 + Version(version).release[1] * 100
                                                 + Version(version).release[2]))
            record = {"calibration_batches": batches,"network_flags": network.flags, "flags": config.flags, "pool": config.pool,
                      "device": config.default_device_type.name, "dla_core": config.DLA_core,
                      "gpu_layers": sorted(config.device_types), "ops": network.ops, "io": network.io,
                      "calibrator": type(calib).__mro__[1].__name__ if calib is not None else None,
                      "calibration_cache": calib.read_calibration_cache().decode() if calib is not None else None,
                      "onnx": base64.b64encode(network.onnx).decode()}
            trt.calls.append(record)
            return json.dumps(record).encode()

    class Engine:
        def __init__(self, record: Dict[str, Any]) -> None:
            self.record = record

        @property
        def num_io_tensors(self) -> int:
            return len(self.record["io"])

        def get_tensor_name(self, i: int) -> str:
            return self.record["io"][i]["name"]

        def _io(self, name: str) -> Dict[str, Any]:
            return next(t for t in self.record["io"] if t["name"] == name)

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode[self._io(name)["mode"]]

        def get_tensor_shape(self, name: str) -> List[int]:
            return self._io(name)["shape"]

        def get_tensor_dtype(self, name: str) -> Any:
            return trt.DataType.FLOAT

        def create_execution_context(self) -> ExecutionContext:
            return ExecutionContext(self)

    class ExecutionContext:
        def __init__(self, engine: Engine) -> None:
            import onnxruntime

            self.engine = engine
            self.session = onnxruntime.InferenceSession(base64.b64decode(engine.record["onnx"]),
                                                        providers=["CPUExecutionProvider"])
            self.addresses: Dict[str, int] = {}
            self.shapes: Dict[str, List[int]] = {}

        def set_input_shape(self, name: str, shape: Any) -> bool:
            self.shapes[name] = list(shape)
            return list(shape) == self.engine.get_tensor_shape(name)

        def get_tensor_shape(self, name: str) -> List[int]:
            return self.shapes.get(name, self.engine.get_tensor_shape(name))

        def set_tensor_address(self, name: str, address: int) -> bool:
            self.addresses[name] = address
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            assert isinstance(stream_handle, int)
            trt.executions = getattr(trt, "executions", 0) + 1
            io = self.engine.record["io"]
            feeds = {t["name"]: MEMORY[self.addresses[t["name"]]].view(np.float32).reshape(t["shape"])
                     for t in io if t["mode"] == "INPUT"}
            outs = self.session.run([t["name"] for t in io if t["mode"] == "OUTPUT"], feeds)
            for t, value in zip([t for t in io if t["mode"] == "OUTPUT"], outs):
                MEMORY[self.addresses[t["name"]]][:] = np.ascontiguousarray(value, np.float32).view(np.uint8).ravel()
            return True

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.DLA_core = -1

        def deserialize_cuda_engine(self, data: bytes) -> Optional[Engine]:
            try:
                return Engine(json.loads(bytes(data)))
            except ValueError:
                return None

    class IInt8Calibrator:
        pass

    class IInt8EntropyCalibrator2(IInt8Calibrator):
        def __init__(self) -> None:
            pass

    class IInt8MinMaxCalibrator(IInt8Calibrator):
        def __init__(self) -> None:
            pass

    trt.Logger, trt.OnnxParser, trt.Builder, trt.Runtime = Logger, OnnxParser, Builder, Runtime
    if major < 11:
        trt.IInt8EntropyCalibrator2, trt.IInt8MinMaxCalibrator = IInt8EntropyCalibrator2, IInt8MinMaxCalibrator
    if major >= 10:
        class IProgressMonitor:
            def __init__(self) -> None:
                pass

        trt.IProgressMonitor = IProgressMonitor
    return trt


#: The stand-in device memory: address -> bytes (uint8 array).
MEMORY: Dict[int, np.ndarray] = {}


def make_pycuda() -> Dict[str, types.ModuleType]:
    """``{"pycuda": ..., "pycuda.driver": ...}`` backed by :data:`MEMORY`."""
    pkg = types.ModuleType("pycuda")
    pkg.__spec__ = importlib.machinery.ModuleSpec("pycuda", None, origin="fake_pycuda", is_package=True)
    drv = types.ModuleType("pycuda.driver")
    drv.__spec__ = importlib.machinery.ModuleSpec("pycuda.driver", None, origin="fake_pycuda")
    pkg.driver = drv
    drv.pushed = []

    class Error(Exception):
        pass

    class Context:
        def push(self) -> None:
            drv.pushed.append(self)

        @staticmethod
        def pop() -> None:
            drv.pushed.pop()

    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        @staticmethod
        def count() -> int:
            return 1

        def name(self) -> str:
            return "Xavier"

        def compute_capability(self) -> Any:
            return (7, 2)

        def retain_primary_context(self) -> Context:
            return Context()

    class DeviceAllocation:
        def __init__(self, nbytes: int) -> None:
            self.address = 0x10000 + 0x1000 * len(MEMORY)
            MEMORY[self.address] = np.zeros(nbytes, np.uint8)

        def __int__(self) -> int:
            return self.address

        def free(self) -> None:
            del MEMORY[self.address]

    class Stream:
        handle = 0x5EED

        def synchronize(self) -> None:
            pass

    def memcpy_htod_async(dest: DeviceAllocation, src: np.ndarray, stream: Stream) -> None:
        assert drv.pushed, "copy without a current CUDA context"
        MEMORY[int(dest)][:] = np.ascontiguousarray(src).view(np.uint8).ravel()

    def memcpy_dtoh_async(dest: np.ndarray, src: DeviceAllocation, stream: Stream) -> None:
        assert drv.pushed, "copy without a current CUDA context"
        dest.view(np.uint8).ravel()[:] = MEMORY[int(src)]

    drv.Error, drv.Context, drv.Device, drv.Stream = Error, Context, Device, Stream
    drv.init = lambda flags=0: None
    drv.pagelocked_empty = lambda shape, dtype: np.empty(shape, dtype)
    drv.mem_alloc = DeviceAllocation
    drv.memcpy_htod_async, drv.memcpy_dtoh_async = memcpy_htod_async, memcpy_dtoh_async
    drv.memcpy_htod = lambda dest, src: memcpy_htod_async(dest, src, None)
    return {"pycuda": pkg, "pycuda.driver": drv}
