"""TensorRT runner: a serialized engine from ``BUNDLE/engines/<device-key>/``, named-tensor API only.

Activation finds the engine that matches this device, TensorRT version, precision, DLA core and the bundle's
model (and calibration cache), refuses anything stale with the reason and the command that rebuilds it,
deserializes it, allocates page-locked host and device buffers for every I/O tensor and one CUDA stream
(jetson/trt/cuda.py: libcudart through ctypes). Inference copies in, runs ``execute_async_v3(stream)``, copies out and synchronizes;
with ``cuda_graph=True`` those three steps are captured once into a CUDA graph and replayed.

Batches: an engine built with ``jetseg build --batch N`` has one optimization profile (batch 1..N on the GPU,
exactly N on the DLA; jetson/trt/profile.py). The runner's ``batch_size`` is at least the profile's largest
batch (so the daemon's batcher forms batches of N), buffers are allocated for it, and each call sets the input
shape of its chunk with ``set_input_shape`` (padding to the profile's smallest batch; with a CUDA graph, to
the batch it was captured at). Larger batches than the engine's run in chunks.

Options (``open_runner("trt", bundle, precision="int8", dla_core=0)``; from the CLI ``--backend trt`` with the
runtime's backend options):
    precision: ``fp32``, ``fp16`` or ``int8``; default: the one engine built for this device (an error lists
        the choices when there are several).
    batch: the engine's batch (``jetseg build --batch N``); default: the one built for this device.
    dla_core: DLA core (0 or 1) or None for the GPU.
    cuda_graph: capture the inference into a CUDA graph.
    device: CUDA device index (0 on a Jetson).
    threads: accepted as by every runner and not applied: the engine computes on the GPU or DLA.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from jetseg.bundle import Bundle, BundleLike
from jetseg.errors import RunnerError
from jetseg.jetson.device import info
from jetseg.jetson.runners.base import Runner
from jetseg.jetson.trt.key import EngineKey
from jetseg.jetson.trt.plan import EngineLookup, find_engine
from jetseg.jetson.trt.profile import chunks, run_size
from jetseg.options import OptionReader
from jetseg.trtcompat import PRECISIONS


def find_engine_here(bundle: Bundle, trt_version: str, precision: Optional[str] = None,
                     dla_core: Optional[int] = None, batch: Optional[int] = None) -> EngineLookup:
    """:func:`~jetseg.jetson.trt.plan.find_engine` for this device: its SoC, compute capability and module from
    the device tree (or CUDA); raises a DeviceError without a GPU. The runner's lookup, and what ``--backend
    auto`` asks before choosing it."""
    soc, cc = info.identity()
    return find_engine(bundle, trt_version, soc, cc, info.module_name(), precision, dla_core, batch)


def _dla_core(opts: OptionReader) -> Optional[int]:
    """The ``dla_core`` option: a DLA core number, or None (also ``none``, ``gpu``, empty) for the GPU."""
    value = opts.text("dla_core", "none")
    if value.strip().lower() in ("", "none", "gpu"):
        return None
    try:
        return int(value)
    except ValueError:
        raise opts.fail("dla_core", value, "a DLA core number (0 or 1) or none") from None


class TensorRTRunner(Runner):
    """Runs a TensorRT engine built by ``jetseg build`` for this bundle and device."""

    name = "trt"

    def __init__(self, bundle: BundleLike, batch_size: int = 1, **options: Any) -> None:
        super().__init__(bundle, batch_size)
        opts = self.read_options(options)
        self.precision: Optional[str] = opts.choice("precision", PRECISIONS, "") or None
        self.dla = _dla_core(opts)
        self.cuda_graph = opts.flag("cuda_graph", False)
        self.device_index = opts.integer("device", 0, minimum=0)
        self.engine_batch: Optional[int] = opts.integer("batch", 0, minimum=0) or None
        self.threads = self.read_threads(opts)
        opts.done()
        self.key: Optional[EngineKey] = None
        self._ctx: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._buffers: Any = None
        self._graph: Any = None
        self._runtime: Any = None
        self._input: Any = None
        self._output: Any = None
        self._low = self._high = 1  # the engine's batch range (its profile, or its static batch)
        self._shape: Tuple[int, ...] = ()  # the input shape set on the context

    # ------------------------------------------------------------------ engine lookup
    def _engine_key(self, trt_version: str) -> Tuple[EngineKey, Path]:
        """The usable engine for this device and the runner's options, or a RunnerError saying why there is
        none and how to build it (:func:`find_engine_here`, also what ``--backend auto``
        asks)."""
        from jetseg.jetson.trt import store

        found = find_engine_here(self.bundle, trt_version, self.precision, self.dla, self.engine_batch)
        if found.key is None or not found.usable:
            raise RunnerError(found.message)
        return found.key, store.engine_dir(self.bundle, found.key) / store.ENGINE_FILE

    # ------------------------------------------------------------------ lifecycle hooks
    def _activate(self) -> None:
        from jetseg import trtcompat
        from jetseg.jetson.trt import cuda as jcuda

        trtcompat.load("the trt backend")
        import tensorrt as trt

        self.key, engine_path = self._engine_key(trt.__version__)
        self._ctx = jcuda.CudaContext(self.device_index)
        try:
            self._load(engine_path)
        except BaseException:
            self._deactivate()  # free whatever was allocated before the failure
            raise

    def _load(self, engine_path: Path) -> None:
        import tensorrt as trt

        from jetseg import trtcompat
        from jetseg.jetson.trt import cuda as jcuda

        with self._ctx:
            runtime = trtcompat.make_runtime(trtcompat.logger())
            if self.dla is not None:
                runtime.DLA_core = self.dla
            engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
            if engine is None:
                precision = self.key.precision if self.key is not None else "fp16"
                raise RunnerError("TensorRT %s cannot deserialize %s (built by another TensorRT or damaged); "
                                  "rebuild it with 'jetseg build %s --precision %s --force'"
                                  % (trt.__version__, engine_path, self.bundle.path, precision))
            context = engine.create_execution_context()
            self._runtime, self._engine, self._context = runtime, engine, context
            self._stream = jcuda.Stream(self._ctx.cuda)
            self._buffers = jcuda.Buffers(self._ctx.cuda, self._stream)
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            outputs = [n for n in names if n not in inputs]
            for name in inputs:  # all input shapes first (the largest batch): output shapes follow from them
                shape = self._largest_shape(engine, name)
                if not context.set_input_shape(name, shape):
                    raise RunnerError("engine input %r does not accept shape %s" % (name, shape))
                self._shape = shape
            self.engine_batch = self._high
            self.batch_size = max(self.batch_size, self._high)
            for name in inputs + outputs:
                dtype = jcuda.numpy_dtype(engine.get_tensor_dtype(name))
                buf = self._buffers.add(name, tuple(context.get_tensor_shape(name)), dtype, name in inputs)
                if not context.set_tensor_address(name, buf.address):
                    raise RunnerError("TensorRT refused the buffer address of tensor %r" % name)
            self._input = self._pick(inputs, self.input_name, "input")
            self._output = self._pick(outputs, self.spec.output.name, "output")
            missing = [n for n in self.extra_input_names if n not in inputs]
            if missing:
                raise RunnerError("engine has inputs %s but spec.yaml names input %r too; rebuild the engine from "
                                  "this bundle" % (inputs, missing[0]))
            if self.cuda_graph:
                context.execute_async_v3(self._stream.handle)  # first run outside capture (lazy setup)
                self._stream.synchronize()
                self._graph = jcuda.CudaGraph(self._stream)
                self._graph.capture(self._enqueue)

    def _largest_shape(self, engine: Any, name: str) -> Tuple[int, ...]:
        """The input's shape at the engine's largest batch; sets the batch range (``_low``, ``_high``) from the
        profile (``get_tensor_profile_shape(name, 0)``: min, opt, max) or from the static batch."""
        shape: Tuple[int, ...] = tuple(int(d) for d in engine.get_tensor_shape(name))
        if all(d >= 0 for d in shape):
            self._low = self._high = shape[0]
            return shape
        low, _, high = [tuple(int(d) for d in dims) for dims in engine.get_tensor_profile_shape(name, 0)]
        self._low, self._high = low[0], high[0]
        return high

    def _pick(self, names: Any, wanted: str, kind: str) -> str:
        if wanted in names:
            return wanted
        if len(names) == 1:  # torch2trt engines name their tensors input_0 / output_0
            return names[0]
        raise RunnerError("engine has %ss %s but spec.yaml names %s %r" % (kind, names, kind, wanted))

    def _enqueue(self) -> None:
        self._buffers.copy_in()
        if not self._context.execute_async_v3(self._stream.handle):
            raise RunnerError("TensorRT execute_async_v3 failed")
        self._buffers.copy_out()

    def _infer(self, batch: np.ndarray, extra_inputs: Dict[str, np.ndarray]) -> np.ndarray:
        buffers = self._buffers.items
        host_in = buffers[self._input].host
        feeds = [(buffers[name].host, array) for name, array in extra_inputs.items()]
        outs = []
        with self._ctx:
            for start, stop in chunks(batch.shape[0], self._high):
                n = stop - start
                size = self._high if self._graph is not None else run_size(n, self._low, self._high)
                self._set_batch(size)
                for host, array in [(host_in, batch)] + feeds:  # feeds: a registration model's fixed images
                    host[:n] = array[start:stop]
                    if size > n:
                        host[n:size] = 0  # padding up to the engine's batch: its outputs are dropped
                if self._graph is not None:
                    self._graph.launch()
                else:
                    self._enqueue()
                self._stream.synchronize()
                outs.append(np.array(buffers[self._output].host[:n], dtype=np.float32, copy=True))
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def _set_batch(self, size: int) -> None:
        """Set the input shape to batch ``size`` when it changes (the named-tensor API's set_input_shape)."""
        shape = (size,) + tuple(self._shape[1:])
        if shape == self._shape:
            return
        for name in [self._input] + list(self.extra_input_names):  # the inputs share the batch and the shape
            if not self._context.set_input_shape(name, shape):
                raise RunnerError("engine input %r does not accept shape %s (its batch is %d..%d)"
                                  % (name, shape, self._low, self._high))
        self._shape = shape

    def _deactivate(self) -> None:
        if self._ctx is None:
            return
        with self._ctx:
            if self._graph is not None:
                self._graph.destroy()
            if self._buffers is not None:
                self._buffers.free()
            if self._stream is not None:
                self._stream.destroy()
            self._context = self._engine = self._runtime = self._stream = self._buffers = self._graph = None
        self._ctx.release()
        self._ctx = None

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info.update(precision=self.key.precision if self.key is not None else self.precision,
                    target="gpu" if self.dla is None else "dla%d" % self.dla, cuda_graph=self.cuda_graph,
                    engine_batch=self.engine_batch)
        if self.key is not None:
            info["engine"] = self.key.name
        return info
