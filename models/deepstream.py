"""A segmentation bundle as DeepStream 6.2/6.3 configs (``jetseg export --deepstream DIR BUNDLE``).

Writes into DIR:

* ``nvinfer_config.txt``: Gst-nvinfer's ``[property]`` group for semantic segmentation (``network-type=2``);
* ``model.onnx``: the bundle's model, or a folded copy when the spec has a per-channel std (below);
* ``calibration.cache``: the bundle's TensorRT cache when INT8 (nvinfer reads it, never calibrates);
* ``deepstream_app_config.txt``: a deepstream-app config for N file sources (placeholders to edit).

Facts (PLATFORM.md, "DeepStream 6.2/6.3 nvinfer, semantic segmentation"; NVIDIA-AI-IOT/deepstream_python_apps,
apps/deepstream-segmentation/dstest_segmentation_config_semantic.txt lines 59-78 (multi-class, 4 classes,
``segmentation-threshold=0.0``) and dstest_segmentation_config_industrial.txt lines 59-78 (one sigmoid channel,
``num-detected-classes=1``, ``segmentation-threshold=0.5``)):

* nvinfer normalises ``y = net-scale-factor * (x - offsets)`` on 0-255 pixels with ONE scale for all channels.
  jetseg's ``y = (x / 255 - mean) / std`` maps to ``offsets = 255 * mean`` and ``net-scale-factor =
  1 / (255 * std)`` when std is the same for every channel. Otherwise the scale is ``1/255`` and a ``Mul``
  node named ``jetseg_fold_std`` (constant ``1 / std``, shape ``1xCx1x1``) is put in front of the model in a
  copy of the ONNX; the config says so in a comment line.
* The class map is the argmax over the output channels counting only values above ``segmentation-threshold``
  (a pixel with none is -1). Softmax with probabilities: threshold 0 gives jetseg's argmax. Softmax with
  logits: a threshold far below any logit (``-1e30``) does. One sigmoid channel: the spec's threshold on the
  output's own scale (logit or probability); DeepStream then calls the foreground class 0 and the background
  -1. Multi-label sigmoid (several foreground channels): jetseg gives the last class above the threshold,
  DeepStream the largest, so it is refused. Enhancement and registration models are refused.

Not verified on a device here (no DeepStream on this host): docs/scale.md says so.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from jetseg import onnxgraph
from jetseg.bundle import CALIBRATION_CACHE_FILE, Bundle
from jetseg.errors import JetsegError
from jetseg.optional import require
from jetseg.spec import Spec

NVINFER_FILE = "nvinfer_config.txt"
APP_FILE = "deepstream_app_config.txt"
MODEL_FILE = "model.onnx"
#: Name of the Mul node (and its constant) that folds a per-channel std into the model's input.
FOLD_NODE = "jetseg_fold_std"
#: nvinfer's network-mode values.
NETWORK_MODES = {"fp32": 0, "int8": 1, "fp16": 2}
#: nvinfer's model-color-format values for the spec's input.color_order.
COLOR_FORMATS = {"rgb": 0, "bgr": 1, "gray": 2}
#: A threshold below any logit, so that DeepStream's class map is the plain argmax of softmax logits.
LOGIT_FLOOR = -1e30


def check_expressible(spec: Spec) -> None:
    """Refuse, in one line, a spec whose decoding DeepStream's semantic segmentation cannot reproduce."""
    if spec.task != "segmentation":
        raise JetsegError("--deepstream exports segmentation bundles; this bundle's task is %s" % spec.task)
    if spec.multilabel:
        raise JetsegError("--deepstream: %s is multi-label sigmoid (%d foreground channels); DeepStream's class map "
                          "is the largest channel above one threshold, not jetseg's last class above it; export "
                          "a softmax model instead" % (spec.name, spec.output_channels))


def normalisation(spec: Spec) -> Tuple[float, List[float], Optional[List[float]]]:
    """``(net-scale-factor, offsets, fold)``: ``fold`` is the per-channel ``1 / std`` to fold into the model
    (None when one scale covers every channel)."""
    mean, std = [float(v) for v in spec.input.mean], [float(v) for v in spec.input.std]
    offsets = [255.0 * m for m in mean]
    if len(set(std)) == 1:
        return 1.0 / (255.0 * std[0]), offsets, None
    return 1.0 / 255.0, offsets, [1.0 / s for s in std]


def segmentation_threshold(spec: Spec) -> float:
    """The ``segmentation-threshold`` that makes DeepStream's class map match :meth:`Spec.decode`."""
    if spec.output.kind == "sigmoid":
        return float(spec._threshold())
    return 0.0 if spec.output.activation == "probabilities" else LOGIT_FLOOR


def fold_std(model: Any, scale: List[float]) -> Any:
    """A copy of ONNX ``model`` whose first input is multiplied by ``scale`` (one per channel) first."""
    onnx = require("onnx", "jetseg export --deepstream")
    import numpy as np
    from onnx import helper, numpy_helper

    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    name = graph.input[0].name
    scaled = FOLD_NODE + "_out"
    for node in graph.node:
        node.input[:] = [scaled if value == name else value for value in node.input]
    for output in graph.output:
        if output.name == name:
            raise JetsegError("the model's input %s is also an output; cannot fold the std into it" % name)
    constant = np.asarray(scale, dtype=np.float32).reshape(1, len(scale), 1, 1)
    graph.initializer.append(numpy_helper.from_array(constant, FOLD_NODE))
    node = helper.make_node("Mul", [name, FOLD_NODE], [scaled], name=FOLD_NODE,
                            doc_string="jetseg: the spec's per-channel 1/std (DeepStream has one scale factor)")
    graph.node.insert(0, node)
    onnx.checker.check_model(folded)
    return folded


def network_mode(bundle: Bundle, precision: Optional[str]) -> str:
    """The precision nvinfer builds with: ``precision`` or int8 for an INT8 bundle with a cache, else fp16."""
    has_cache = bundle.file(CALIBRATION_CACHE_FILE).is_file()
    chosen = precision or ("int8" if bundle.precision == "int8" and has_cache else "fp16")
    if chosen not in NETWORK_MODES:
        raise JetsegError("--precision %s: expected one of %s" % (chosen, ", ".join(NETWORK_MODES)))
    if chosen == "int8" and not has_cache:
        raise JetsegError("--precision int8 needs the bundle's %s (jetseg calibrate writes it); %s has none; use "
                          "--precision fp16" % (CALIBRATION_CACHE_FILE, bundle.path))
    return chosen


def nvinfer_properties(spec: Spec, precision: str, batch_size: int, engine: Optional[str] = None,
                       calib: bool = False) -> Dict[str, str]:
    """The ``[property]`` keys and values for ``spec`` (files named relative to the config)."""
    scale, offsets, _ = normalisation(spec)
    _, channels, height, width = spec.input_shape
    props = {"gpu-id": "0", "network-type": "2", "onnx-file": MODEL_FILE}
    if engine:
        props["model-engine-file"] = engine
    if calib:
        props["int8-calib-file"] = CALIBRATION_CACHE_FILE
    props.update({
        "network-mode": str(NETWORK_MODES[precision]), "batch-size": str(batch_size),
        "infer-dims": "%d;%d;%d" % (channels, height, width),
        "model-color-format": str(COLOR_FORMATS[spec.input.color_order]),
        "net-scale-factor": repr(scale), "offsets": ";".join(repr(v) for v in offsets),
        "output-blob-names": spec.output.name, "num-detected-classes": str(spec.output_channels),
        "segmentation-threshold": repr(segmentation_threshold(spec)), "segmentation-output-order": "0",
        "gie-unique-id": "1"})
    return props


def nvinfer_text(props: Dict[str, str], comments: List[str]) -> str:
    return "".join("# %s\n" % c for c in comments) + "[property]\n" + "".join("%s=%s\n" % kv for kv in props.items())


def app_text(spec: Spec, sources: int, batch_size: int, width: int, height: int) -> str:
    """deepstream-app's config: ``sources`` file-URI sources, streammux, the nvinfer as primary-gie, a fakesink."""
    lines = ["# jetseg export --deepstream: edit each uri (file:///path/to/video.mp4 placeholders)"]
    roi = spec.input.roi
    if roi is not None:
        lines.append("# the spec's ROI %s is NOT applied by this config: crop the frames before DeepStream or add "
                     "a preprocessing stage (docs/scale.md)" % (roi,))
    lines += ["[application]", "enable-perf-measurement=1", "perf-measurement-interval-sec=5", ""]
    for index in range(sources):
        lines += ["[source%d]" % index, "enable=1", "type=3", "uri=file:///path/to/video%d.mp4" % index,
                  "num-sources=1", "gpu-id=0", ""]
    lines += ["[streammux]", "gpu-id=0", "batch-size=%d" % sources, "batched-push-timeout=40000",
              "width=%d" % width, "height=%d" % height, "live-source=0", "",
              "[primary-gie]", "enable=1", "gpu-id=0", "batch-size=%d" % batch_size, "gie-unique-id=1",
              "config-file=%s" % NVINFER_FILE, "",
              "[sink0]", "enable=1", "type=1", "sync=0", ""]
    return "\n".join(lines)


def write_configs(out: Path, bundle: Bundle, sources: int = 1, engine: Optional[Path] = None,
                  precision: Optional[str] = None, frame_size: Tuple[int, int] = (1920, 1080)) -> Path:
    """Write the DeepStream files for ``bundle`` into ``out`` (which must not exist); return ``out``."""
    spec = bundle.spec
    check_expressible(spec)
    if sources < 1:
        raise JetsegError("--sources %d: expected 1 or more" % sources)
    if engine is not None and not Path(engine).is_file():
        raise JetsegError("--engine %s does not exist; expected the engine 'jetseg build' made on the device" % engine)
    out = Path(out)
    if out.exists():
        raise JetsegError("%s exists; remove it or choose another --deepstream DIR" % out)
    mode = network_mode(bundle, precision)
    onnx = require("onnx", "jetseg export --deepstream")
    model = onnx.load(str(bundle.model_path))
    batch = onnxgraph.dims(model.graph.input[0])[0]
    batch_size = sources if not isinstance(batch, int) else 1
    _, _, fold = normalisation(spec)
    comments = ["jetseg export --deepstream of %s (%s); DeepStream 6.2/6.3 Gst-nvinfer" % (bundle.name, bundle.path)]
    if fold is not None:
        comments.append("%s: the spec's per-channel std %s is folded into %s as the Mul node %s (1/std); "
                        "net-scale-factor is 1/255" % (MODEL_FILE, list(spec.input.std), MODEL_FILE, FOLD_NODE))
    if spec.output.kind == "sigmoid":
        comments.append("one sigmoid channel: DeepStream's class 0 is %s, -1 is %s" % (spec.classes[1], spec.classes[0]))
    out.mkdir(parents=True)
    if fold is not None:
        onnx.save(fold_std(model, fold), str(out / MODEL_FILE))
    else:
        shutil.copyfile(bundle.model_path, out / MODEL_FILE)
    calib = mode == "int8"
    if calib:
        shutil.copyfile(bundle.file(CALIBRATION_CACHE_FILE), out / CALIBRATION_CACHE_FILE)
    engine_name = None
    if engine is not None:
        engine_name = Path(engine).name
        shutil.copyfile(engine, out / engine_name)
    props = nvinfer_properties(spec, mode, batch_size, engine=engine_name, calib=calib)
    (out / NVINFER_FILE).write_text(nvinfer_text(props, comments))
    (out / APP_FILE).write_text(app_text(spec, sources, batch_size, *frame_size))
    return out
