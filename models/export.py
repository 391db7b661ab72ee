"""Turn a user's model into a bundle: check an ONNX file, or export TorchScript / a factory to ONNX opset 17.

Every route ends in the same checks: ``onnx.checker``, a static input shape, opset <= 17, the input and
output names of the spec, and (for PyTorch sources) ONNX Runtime output compared with PyTorch output on
random input. Weights are loaded with ``torch.load(..., weights_only=True)``: no pickle code runs.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from jetseg.errors import JetsegError
from jetseg.onnxgraph import default_opset, dims, is_static
from jetseg.optional import require
from jetseg.spec import Spec
from jetseg.trtcompat import MAX_OPSET, opset_problem

log = logging.getLogger("jetseg.export")

#: PyTorch vs ONNX Runtime: max |difference| allowed, relative to the output's range (plus an absolute floor)
RTOL = 1e-3
ATOL = 1e-4


class ExportError(JetsegError):
    """A model cannot be exported or does not pass the deployment checks."""


# ---------------------------------------------------------------------------------------------- torch side
def load_weights(model: Any, path: Any) -> None:
    """Load a state_dict into ``model`` without executing pickled code (``weights_only=True``)."""
    torch = require("torch", "loading weights")
    path = Path(path)
    if not path.is_file():
        raise ExportError("weights file %s does not exist; expected a PyTorch state_dict (.pt)" % path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError/RuntimeError for unsafe or corrupt files
        raise ExportError("cannot load %s as weights only (%s); save it with torch.save(model.state_dict(), "
                          "path)" % (path, str(exc).splitlines()[0][:160])) from None
    for key in ("state_dict", "model"):  # Lightning checkpoints; MONAI's CheckpointSaver {"model": ...}
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ExportError("%s holds a %s, not a state_dict; save it with torch.save(model.state_dict(), path)"
                          % (path, type(state).__name__))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:200]
        raise ExportError("weights %s do not fit the model: %s" % (path, first)) from None


@contextlib.contextmanager
def _importable_from(module_path: Optional[str]) -> Iterator[None]:
    """Make ``module_path`` importable for the duration of the block (first on ``sys.path``, then removed)."""
    if not module_path:
        yield
        return
    folder = str(Path(module_path).resolve())
    if not Path(folder).is_dir():
        raise ExportError("--module-path %s is not a folder; expected the folder that holds the model's package"
                          % module_path)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def load_factory(target: str, kwargs: Optional[Dict[str, Any]] = None, module_path: Optional[str] = None) -> Any:
    """Call ``package.module:factory`` (a function or class returning a ``torch.nn.Module``).

    ``module_path``: a folder to import the package from (the user's source tree), instead of PYTHONPATH.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ExportError("model %r is not a file or 'package.module:factory'" % target)
    try:
        with _importable_from(module_path):
            module = importlib.import_module(module_name)
    except ExportError:  # --module-path is not a folder
        raise
    except ImportError as exc:
        where = "in --module-path %s" % module_path if module_path else \
            "installed or on PYTHONPATH? (or give --module-path DIR)"
        raise ExportError("cannot import %s for %s: %s; is it %s" % (module_name, target, exc, where)) from None
    except Exception as exc:  # the user's module failed while importing: say so in one line
        raise ExportError("importing %s for %s failed: %s: %s" % (module_name, target, type(exc).__name__,
                                                                  _first_line(exc))) from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ExportError("%s has no callable %r; expected a function or class that returns the model"
                          % (module_name, attr))
    try:
        model = factory(**(kwargs or {}))
    except Exception as exc:  # the user's factory raised: one line, the traceback with --verbose
        raise ExportError("%s raised %s: %s; fix the factory"
                          % (target, type(exc).__name__, _first_line(exc))) from exc
    torch = require("torch", "exporting a PyTorch model")
    if not isinstance(model, torch.nn.Module):
        raise ExportError("%s returned %s; expected a torch.nn.Module (the model to export)"
                          % (target, type(model).__name__))
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def load_torchscript(path: Any) -> Any:
    torch = require("torch", "TorchScript models")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch.jit raises RuntimeError for anything it cannot read
        raise ExportError("%s is not a TorchScript model (%s); save it with torch.jit.save(torch.jit.script("
                          "model), path)" % (path, str(exc).splitlines()[0][:160])) from None


def io_names(spec: Spec) -> Tuple[List[str], List[str]]:
    """The model's input and output names in order: ``input.name`` (and a registration model's
    ``fixed_input``), ``output.name`` (and its ``warped_output`` when set)."""
    reg = spec.registration
    if reg is None:
        return [spec.input.name], [spec.output.name]
    return [spec.input.name, reg.fixed_input], [spec.output.name] + ([reg.warped_output] if reg.warped_output else [])


#: ``--batch dynamic``: the batch axis' name in the ONNX (every other dimension stays static)
DYNAMIC_BATCH = "N"


def parse_batch(value: Any) -> Union[int, str]:
    """``--batch``: a positive integer (a fixed batch) or ``dynamic`` (any batch; the multi-stream batcher, Triton's
    dynamic batching and TensorRT profiles use it). Raises ExportError with the accepted forms."""
    text = str(value).strip().lower()
    if text == "dynamic":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise ExportError("--batch %r is invalid; expected a positive integer (a fixed batch) or dynamic" % (value,))


def example_shape(spec: Spec, batch: Union[int, str] = 1) -> Tuple[int, ...]:
    """The input shape an export and its parity check use: a fixed ``batch``, or 2 for a dynamic batch (so that
    the check runs a batch above 1 through the exported graph)."""
    return (batch if isinstance(batch, int) else 2,) + tuple(spec.input_shape[1:])


def torch_to_onnx(model: Any, spec: Spec, batch: Union[int, str] = 1) -> bytes:
    """Export ``model`` (eval mode) to ONNX opset 17 with the spec's tensor names and static dimensions, the
    batch fixed (``batch`` N) or dynamic (``"dynamic"``: named :data:`DYNAMIC_BATCH`); a registration model
    has two inputs, and the warped image as a second output when the spec names one."""
    torch = require("torch", "ONNX export")
    model.eval()
    inputs, outputs = io_names(spec)
    examples = tuple(torch.zeros(example_shape(spec, batch), dtype=torch.float32) for _ in inputs)
    dynamic_axes = None if isinstance(batch, int) else {name: {0: DYNAMIC_BATCH} for name in inputs + outputs}
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter is what we want
            warnings.filterwarnings("ignore", message="no signature found")  # ScriptModules have none
            torch.onnx.export(model, examples, buffer, opset_version=MAX_OPSET,
                              input_names=inputs, output_names=outputs, do_constant_folding=True, dynamo=False,
                              dynamic_axes=dynamic_axes)
    except Exception as exc:  # the exporter raises many types for unsupported models
        raise ExportError("PyTorch cannot export the model to ONNX opset %d with input %s: %s"
                          % (MAX_OPSET, list(examples[0].shape), str(exc).splitlines()[0][:200])) from None
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- onnx side
def check_onnx(model: Any, spec: Spec) -> Any:
    """Check an ONNX model (path or bytes) for deployment; return the loaded ``onnx.ModelProto``.

    Checks: ``onnx.checker``; opset <= 17 (TensorRT 8.5); one input named like ``spec.input.name`` with the
    shape ``spec.input_shape`` (the batch fixed, or dynamic: every other dimension static); an output named ``spec.output.name`` with
    ``spec.output_channels`` channels.
    """
    onnx = require("onnx", "checking ONNX models")
    try:
        proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    except Exception as exc:  # protobuf DecodeError and friends
        raise ExportError("%s is not a readable ONNX model: %s" % (_where(model), str(exc)[:160])) from None
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError("%s fails onnx.checker: %s" % (_where(model), str(exc).splitlines()[0][:200])) from None
    problem = opset_problem(default_opset(proto))
    if problem:
        raise ExportError("%s uses ONNX %s" % (_where(model), problem))
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    names = [i.name for i in inputs]
    wanted, wanted_out = io_names(spec)
    if sorted(names) != sorted(wanted):
        if len(wanted) == 2:
            hint = " (the moving image is input.name, the fixed one registration.fixed_input)"
        elif len(names) == 1:
            hint = " (use --input-name %s, or set input.name in the spec)" % names[0]
        else:
            hint = " (set input.name in the spec to the model's input name)"
        raise ExportError("%s has inputs %s; the spec expects %s named %s%s"
                          % (_where(model), names, "exactly one input" if len(wanted) == 1 else "the inputs",
                             ", ".join(repr(n) for n in wanted), hint))
    for inp in inputs:
        shape = dims(inp)
        if not shape or not is_static(shape[1:]):
            raise ExportError("%s input %r has a dynamic shape %s; jetseg needs static dimensions such as %s (only "
                              "the batch, the first, may be dynamic: export with dynamic_axes on axis 0 only)"
                              % (_where(model), inp.name, shape, list(spec.input_shape)))
        if list(shape[1:]) != list(spec.input_shape[1:]) or len(shape) != 4:
            raise ExportError("%s input %r has shape %s; the spec expects %s (NCHW: channels %d, size %dx%d)"
                              % (_where(model), inp.name, shape, list(spec.input_shape), spec.input.channels,
                                 spec.input.size[0], spec.input.size[1]))
    outputs = {o.name: dims(o) for o in proto.graph.output}
    for name in wanted_out:
        if name not in outputs:
            raise ExportError("%s has outputs %s; the spec expects an output named %r"
                              % (_where(model), sorted(outputs), name))
    out_shape = outputs[spec.output.name]
    if len(out_shape) == 4 and isinstance(out_shape[1], int) and out_shape[1] != spec.output_channels:
        raise ExportError("%s output %r has %d channels; the spec (%s, %d classes) expects %d"
                          % (_where(model), spec.output.name, out_shape[1], spec.output.kind, spec.num_classes,
                             spec.output_channels))
    return proto


def output_activation(proto: Any, name: str) -> str:
    """``probabilities`` when the node producing output ``name`` is a Sigmoid or Softmax, else ``logits``.

    LogSoftmax counts as logits (argmax and the softmax of log-probabilities are what the decoder does).
    """
    for node in proto.graph.node:
        if name in node.output:
            return "probabilities" if node.op_type in ("Sigmoid", "Softmax") else "logits"
    return "logits"


def record_activation(proto: Any, spec: Spec, info: Dict[str, Any]) -> None:
    """Set ``spec.output.activation`` from the model's last node and note it in ``info`` (segmentation only:
    an enhanced image is read as it is)."""
    if spec.task != "segmentation":
        return
    found = output_activation(proto, spec.output.name)
    if found != spec.output.activation:
        log.info("output %r comes from a %s node: output.activation is %s (the decoder does not apply the "
                 "activation again)", spec.output.name, "Sigmoid/Softmax" if found == "probabilities"
                 else "non-activation", found)
    spec.output.activation = found
    info["output_activation"] = found


def _where(model: Any) -> str:
    return "the exported model" if isinstance(model, bytes) else str(model)


def compare_with_torch(model: Any, onnx_bytes: bytes, spec: Spec, seed: int = 0,
                       rtol: float = RTOL, atol: float = ATOL, batch: Union[int, str] = 1) -> float:
    """Run PyTorch and ONNX Runtime on the same random input (of :func:`example_shape`); return max |difference|.

    Raises ExportError when the difference exceeds ``atol + rtol * range(PyTorch output)``.
    """
    torch = require("torch", "export checks")
    ort = require("onnxruntime", "export checks")
    rng = np.random.default_rng(seed)
    names = io_names(spec)[0]
    feed = {name: rng.standard_normal(example_shape(spec, batch)).astype(np.float32) for name in names}
    with torch.no_grad():
        expected = model(*[torch.from_numpy(feed[name]) for name in names])
    if isinstance(expected, (tuple, list)):
        expected = expected[0]
    expected = expected.detach().cpu().numpy()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    got = session.run([spec.output.name], feed)[0]
    if got.shape != expected.shape:
        raise ExportError("ONNX Runtime output shape %s differs from PyTorch's %s" % (got.shape, expected.shape))
    diff = float(np.max(np.abs(got - expected)))
    limit = atol + rtol * float(np.ptp(expected))
    if not diff <= limit:
        raise ExportError("ONNX Runtime and PyTorch outputs differ by up to %.3g (allowed %.3g); the model "
                          "uses an op that exports differently, check it with a simpler input" % (diff, limit))
    return diff


# ---------------------------------------------------------------------------------------------- routes
def torchscript_bytes(model: Any) -> bytes:
    """``model`` (a ScriptModule, weights loaded) serialized with ``torch.jit.save``."""
    torch = require("torch", "TorchScript models")
    buffer = io.BytesIO()
    torch.jit.save(model, buffer)
    return buffer.getvalue()


def export_torch(model: Any, spec: Spec, info: Dict[str, Any], batch: Union[int, str] = 1) -> bytes:
    """A PyTorch model (weights loaded) to checked ONNX bytes with a fixed or dynamic ``batch``; the activation,
    the batch and the parity go into ``info``."""
    data = torch_to_onnx(model, spec, batch)
    record_activation(check_onnx(data, spec), spec, info)
    info["batch"] = batch
    info["max_abs_diff_vs_torch"] = compare_with_torch(model, data, spec, batch=batch)
    return data


def export_model(source: str, spec: Spec, weights: Optional[str] = None,
                 factory_kwargs: Optional[Dict[str, Any]] = None, module_path: Optional[str] = None,
                 keep: Optional[Dict[str, bytes]] = None,
                 batch: Optional[Union[int, str]] = None) -> Tuple[bytes, Dict[str, Any]]:
    """Produce checked ONNX bytes from ``MODEL.onnx``, ``MODEL.ts`` / ``.pt`` TorchScript or ``pkg.mod:factory``.

    Args:
        module_path: folder to import ``pkg.mod`` from (else it must be installed or on PYTHONPATH).
        keep: when given, receives the files a bundle keeps besides the ONNX model: for TorchScript,
            ``{"model.ts": bytes}`` (the ScriptModule with ``weights`` loaded), the PyTorch reference.
        batch: for PyTorch sources, the exported batch: N (fixed) or ``"dynamic"``; None: 1. An ONNX file keeps
            its own batch axis, so ``batch`` must be None there.

    Returns ``(onnx_bytes, info)`` where ``info`` records the route, the source and the parity check.
    """
    path = Path(source)
    info: Dict[str, Any] = {"source": source}
    if path.suffix.lower() == ".onnx":
        if weights:
            raise ExportError("--weights applies to PyTorch models, not to %s (an ONNX file has its weights)"
                              % source)
        if not path.is_file():
            raise ExportError("ONNX model %s does not exist" % source)
        if batch is not None:
            raise ExportError("--batch applies to PyTorch models; an ONNX file keeps its own batch axis (fixed, or "
                              "dynamic when it was exported with dynamic_axes on axis 0)")
        proto = check_onnx(path, spec)
        record_activation(proto, spec, info)
        data = path.read_bytes()
        info["route"] = "onnx"
        return data, info
    if path.suffix.lower() in (".ts", ".pt", ".pth", ".torchscript", ".jit"):
        if not path.is_file():
            raise ExportError("TorchScript model %s does not exist" % source)
        model = load_torchscript(path)
        info["route"] = "torchscript"
    elif ":" in source and not path.exists():
        model = load_factory(source, factory_kwargs, module_path)
        info["route"] = "factory"
    elif path.is_dir():
        raise ExportError("%s is a folder but not a MONAI bundle (no configs/metadata.json); expected MODEL.onnx, "
                          "MODEL.ts, package.module:factory or a MONAI bundle folder" % source)
    else:
        raise ExportError("model %r is not supported; expected MODEL.onnx, MODEL.ts (TorchScript) or "
                          "package.module:factory or a MONAI bundle folder" % source)
    if weights:
        load_weights(model, weights)
        info["weights"] = str(weights)
    data = export_torch(model, spec, info, batch if batch is not None else 1)
    if keep is not None and info["route"] == "torchscript":
        from jetseg.bundle import TORCHSCRIPT_FILE

        keep[TORCHSCRIPT_FILE] = torchscript_bytes(model)
    return data, info
