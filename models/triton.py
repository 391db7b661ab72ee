"""A bundle as a Triton Inference Server model repository (``jetseg export --triton REPO BUNDLE``).

Layout (Triton's model repository)::

    REPO/<name>/config.pbtxt
    REPO/<name>/1/model.plan          platform tensorrt_plan (an engine built on the serving device)
    REPO/<name>/1/model.onnx          platform onnxruntime_onnx (x86 or GPU servers)
    REPO/<name>/1/calibration.cache   INT8 with ONNX Runtime's TensorRT accelerator (native TensorRT cache)

The server runs the model only: the client does jetseg's preprocessing (:meth:`~jetseg.spec.Spec.preprocess`,
``NCHW float32``) and decoding (:meth:`~jetseg.spec.Spec.decode`), as the ``triton`` runner does
(docs/scale.md). ``config.pbtxt`` is written from the spec: input and output names, dims without the batch axis
when the model batches (``max_batch_size > 0``), ``TYPE_FP32``, ``dynamic_batching`` and the instance group.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import List, Optional, Sequence

from jetseg import onnxgraph
from jetseg.bundle import CALIBRATION_CACHE_FILE, Bundle
from jetseg.errors import JetsegError
from jetseg.optional import require
from jetseg.records import BUILD_FILE, BuildRecord
from jetseg.spec import Spec

#: Model file of each platform Triton serves a bundle with (REPO/<name>/1/<file>).
PLATFORMS = {"tensorrt_plan": "model.plan", "onnxruntime_onnx": "model.onnx"}
#: What ONNX Runtime's TensorRT accelerator is asked to run for each bundle precision.
TRT_PRECISION = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}
DEFAULT_QUEUE_DELAY_US = 2000


def _dims(values: Sequence[int]) -> str:
    return "[ %s ]" % ", ".join(str(int(v)) for v in values)


def _escaped(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def tensor_dims(spec: Spec, max_batch_size: int) -> List[List[int]]:
    """``[input dims, output dims]`` as config.pbtxt lists them: without N when ``max_batch_size > 0``."""
    shapes = [list(spec.input_shape), list(spec.output_shape)]
    return [s[1:] for s in shapes] if max_batch_size > 0 else shapes


def model_config(spec: Spec, name: str, platform: str = "", backend: str = "", max_batch_size: int = 0,
                 queue_delay_us: int = DEFAULT_QUEUE_DELAY_US, kind: str = "KIND_GPU", instances: int = 1,
                 accelerator: Optional[dict] = None, parameters: Optional[dict] = None) -> str:
    """The text of ``config.pbtxt`` for ``spec`` (Triton's ``ModelConfig`` message in protobuf text format).

    Args:
        spec: the bundle's spec (input ``NCHW float32``, output logits ``NKHW float32``).
        name: the model name clients ask for.
        platform: ``tensorrt_plan`` or ``onnxruntime_onnx`` (or empty with ``backend``).
        backend: ``python`` for ``jetseg serve``'s model (or empty with ``platform``).
        max_batch_size: 0 for a model with a fixed batch of 1 (dims then include N); else the largest batch
            Triton's dynamic batcher forms (the engine's optimization profile must cover 1..max_batch_size).
        queue_delay_us: how long the dynamic batcher waits to fill a batch.
        kind: ``KIND_GPU`` or ``KIND_CPU``.
        instances: model instances.
        accelerator: ONNX Runtime's TensorRT execution accelerator parameters (``precision_mode`` ...).
        parameters: the model's own string parameters (``jetseg serve``: bundle and backend).
    """
    if bool(platform) == bool(backend):
        raise JetsegError("a Triton model has a platform or a backend; got platform=%r backend=%r" % (platform, backend))
    if max_batch_size < 0:
        raise JetsegError("max_batch_size %d: expected 0 (no batching) or more" % max_batch_size)
    in_dims, out_dims = tensor_dims(spec, max_batch_size)
    lines = ['name: "%s"' % name, ('platform: "%s"' % platform) if platform else ('backend: "%s"' % backend),
             "max_batch_size: %d" % max_batch_size,
             'input [ { name: "%s" data_type: TYPE_FP32 dims: %s } ]' % (spec.input.name, _dims(in_dims)),
             'output [ { name: "%s" data_type: TYPE_FP32 dims: %s } ]' % (spec.output.name, _dims(out_dims)),
             "instance_group [ { kind: %s count: %d } ]" % (kind, instances)]
    if max_batch_size > 0:
        lines.append("dynamic_batching { max_queue_delay_microseconds: %d }" % queue_delay_us)
    for key, value in (parameters or {}).items():
        lines.append('parameters { key: "%s" value: { string_value: "%s" } }' % (key, _escaped(value)))
    if accelerator:
        params = " ".join('parameters { key: "%s" value: "%s" }' % kv for kv in accelerator.items())
        lines.append("optimization { execution_accelerators { gpu_execution_accelerator : [ "
                     '{ name : "tensorrt" %s } ] } }' % params)
    return "\n".join(lines) + "\n"


def onnx_accelerator(bundle: Bundle) -> dict:
    """ONNX Runtime's TensorRT accelerator block for the bundle's precision; INT8 reads the bundle's native
    TensorRT calibration cache (copied next to model.onnx), which only a cache-calibrated bundle has."""
    params = {"precision_mode": TRT_PRECISION.get(bundle.precision, "FP32"),
              "max_workspace_size_bytes": str(1 << 30), "trt_engine_cache_enable": "1"}
    if bundle.precision == "int8" and bundle.file(CALIBRATION_CACHE_FILE).is_file():
        params.update(int8_calibration_table_name=CALIBRATION_CACHE_FILE, int8_use_native_calibration_table="1")
    return params


def check_batch_axis(bundle: Bundle, max_batch_size: int) -> None:
    """Triton batches (``max_batch_size > 0``) only a model whose first input axis is dynamic."""
    if max_batch_size == 0:
        return
    model = require("onnx", "jetseg export --triton").load(str(bundle.model_path), load_external_data=False)
    batch = onnxgraph.dims(model.graph.input[0])[0]
    if isinstance(batch, int):
        raise JetsegError("--max-batch %d: %s has a fixed batch of %d; use --max-batch 0, or export the model with "
                          "a dynamic batch axis" % (max_batch_size, bundle.model_path, batch))


def plan_max_batch(engine: Path, asked: Optional[int] = None) -> int:
    """``max_batch_size`` for a plan: the engine's largest batch from the build.json next to it (``jetseg build
    --batch N``: a profile from batch 1 to N), or ``asked`` when it is within that; 0 for an engine of a
    fixed batch of 1. A fixed batch above 1 (a DLA engine, or a model exported with batch N) cannot take
    Triton's batches of 1..N, and a plan without build.json keeps ``asked`` (default 0)."""
    folder = Path(engine).parent
    if not (folder / BUILD_FILE).is_file():
        return asked or 0
    record = BuildRecord.read(folder)
    dynamic = "max" in record.profile and int(record.profile["min"][0]) == 1
    if not dynamic and record.batch > 1:
        raise JetsegError("engine %s runs a fixed batch of %d (%s); Triton's dynamic batcher sends 1..N: build "
                          "it for the GPU with 'jetseg build --batch %d' from a model with a dynamic batch axis"
                          % (engine, record.batch, "the DLA" if record.profile.get("dla") else "a fixed-batch model",
                             record.batch))
    largest = record.batch if dynamic else 0
    if asked is None:
        return largest
    if asked > largest:
        raise JetsegError("--max-batch %d: engine %s runs batches up to %d (build.json); use --max-batch %d or "
                          "rebuild with 'jetseg build --batch %d'" % (asked, engine, max(largest, 1), largest, asked))
    return asked


def write_repository(repo: Path, bundle: Bundle, platform: str, name: str = "", engine: Optional[Path] = None,
                     max_batch_size: Optional[int] = 0, queue_delay_us: int = DEFAULT_QUEUE_DELAY_US) -> Path:
    """Write ``REPO/<name>/`` for ``bundle`` served on ``platform``; return that folder.

    ``engine`` is the plan for ``tensorrt_plan`` (built by ``jetseg build`` on the serving device with the
    TensorRT version of that Triton release); its ``max_batch_size`` comes from its build.json when
    ``max_batch_size`` is None (:func:`plan_max_batch`). An existing model folder is an error (choose another
    name).
    """
    if platform not in PLATFORMS:
        raise JetsegError("unknown Triton platform %r; expected one of %s" % (platform, ", ".join(PLATFORMS)))
    name = name or bundle.name
    folder = Path(repo) / name
    if folder.exists():
        raise JetsegError("%s exists; remove it or give another --triton-name" % folder)
    if platform == "tensorrt_plan":
        if engine is None or not Path(engine).is_file():
            raise JetsegError("platform tensorrt_plan needs --engine FILE (an engine 'jetseg build' made on the "
                              "serving device); got %s" % (engine or "none"))
        source, accelerator = Path(engine), None
        max_batch_size = plan_max_batch(source, max_batch_size)
    else:
        source, accelerator = bundle.model_path, onnx_accelerator(bundle)
        max_batch_size = max_batch_size or 0
        check_batch_axis(bundle, max_batch_size)
    version = folder / "1"
    version.mkdir(parents=True)
    shutil.copyfile(source, version / PLATFORMS[platform])
    if accelerator and "int8_calibration_table_name" in accelerator:
        shutil.copyfile(bundle.file(CALIBRATION_CACHE_FILE), version / CALIBRATION_CACHE_FILE)
    text = model_config(bundle.spec, name, platform=platform, max_batch_size=max_batch_size,
                        queue_delay_us=queue_delay_us, accelerator=accelerator)
    (folder / "config.pbtxt").write_text(text)
    return folder
