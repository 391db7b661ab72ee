"""A MONAI bundle folder -> the spec and the checked ONNX model of a jetseg bundle.

MONAI's bundle specification: ``configs/metadata.json`` describes the network's input and output under
``network_data_format`` (``num_channels``, ``spatial_shape``, ``value_range``, ``channel_def``), and
``models/`` holds the network as ``model.onnx``, ``model.ts`` (TorchScript) or ``model.pt`` (a state_dict for
the ``network_def`` of ``configs/inference.json``). The first of those that exists is used, in that order.

A bundle is data: ``model.pt`` is read only when MONAI is installed, and ``network_def`` may only name MONAI's
own classes with literal arguments (no ``$`` expressions, no ``@`` references): nothing the bundle names runs
unless it is MONAI. The inference config's post-processing decides the output: ``Activations(d)`` with
``sigmoid: true`` (and ``AsDiscrete(d)``'s ``threshold``) makes a sigmoid output, else softmax over the
``channel_def`` classes.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from jetseg.errors import JetsegError
from jetseg.optional import require
from jetseg.spec import Spec

log = logging.getLogger("jetseg.export")

METADATA = Path("configs") / "metadata.json"
INFERENCE = Path("configs") / "inference.json"
#: the model files of a MONAI bundle, in the order they are tried
MODEL_FILES = (Path("models") / "model.onnx", Path("models") / "model.ts", Path("models") / "model.pt")


class MonaiBundleError(JetsegError):
    """A MONAI bundle folder is incomplete or describes a network jetseg cannot run."""


def is_monai_bundle(path: Any) -> bool:
    """True when ``path`` is a folder with ``configs/metadata.json``."""
    return Path(path).is_dir() and (Path(path) / METADATA).is_file()


@dataclass
class MonaiBundle:
    """What jetseg reads from a MONAI bundle folder."""

    path: Path
    metadata: Dict[str, Any]
    inference: Optional[Dict[str, Any]] = None
    model_file: Optional[Path] = None
    notes: List[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or self.path.name)

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))

    def provenance(self) -> Dict[str, Any]:
        """The MONAI bundle's name, version and file hashes, for the jetseg bundle's manifest."""
        files = [METADATA] + ([INFERENCE] if (self.path / INFERENCE).is_file() else [])
        files += [self.model_file] if self.model_file is not None else []
        return {"name": self.name, "version": self.version, "path": str(self.path.resolve()),
                "monai_version": self.metadata.get("monai_version"),
                "model_file": str(self.model_file) if self.model_file else None,
                "sha256": {str(f): _sha256(self.path / f) for f in files}}


def read_bundle(path: Any) -> MonaiBundle:
    """Read ``configs/metadata.json`` (and ``configs/inference.json`` when present) of a MONAI bundle."""
    root = Path(path)
    if not is_monai_bundle(root):
        raise MonaiBundleError("%s is not a MONAI bundle: expected a folder with %s" % (root, METADATA))
    metadata = _read_json(root / METADATA)
    inference = _read_json(root / INFERENCE) if (root / INFERENCE).is_file() else None
    model_file = next((f for f in MODEL_FILES if (root / f).is_file()), None)
    return MonaiBundle(root, metadata, inference, model_file)


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MonaiBundleError("cannot read %s: %s; expected MONAI's JSON config" % (path, exc)) from None
    if not isinstance(data, dict):
        raise MonaiBundleError("%s holds a %s; expected a JSON object" % (path, type(data).__name__))
    return data


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------- the spec
def _one(bundle: MonaiBundle, side: str) -> Tuple[str, Dict[str, Any]]:
    """The one entry of ``network_data_format.inputs`` / ``outputs``."""
    entries = (bundle.metadata.get("network_data_format") or {}).get(side) or {}
    if not isinstance(entries, dict) or len(entries) != 1:
        raise MonaiBundleError("%s: network_data_format.%s has %s; jetseg runs networks with exactly one %s "
                               "(an image)" % (bundle.path / METADATA, side, sorted(entries) or "no entries",
                                               side[:-1]))
    key, value = next(iter(entries.items()))
    if not isinstance(value, dict):
        raise MonaiBundleError("%s: network_data_format.%s.%s is a %s; expected an object"
                               % (bundle.path / METADATA, side, key, type(value).__name__))
    return key, value


def _channels(entry: Dict[str, Any], where: str) -> int:
    value = entry.get("num_channels", entry.get("channels"))
    if not isinstance(value, int) or value < 1:
        raise MonaiBundleError("%s: num_channels is %r; expected a positive integer" % (where, value))
    return value


def _size(entry: Dict[str, Any], where: str, override: Optional[Tuple[int, int]]) -> Tuple[int, int]:
    shape = entry.get("spatial_shape")
    if not isinstance(shape, list) or len(shape) != 2:
        raise MonaiBundleError("%s: spatial_shape is %r; jetseg runs 2-D networks (spatial_shape [H, W])"
                               % (where, shape))
    if override is not None:
        return override
    if not all(isinstance(v, int) and v > 0 for v in shape):
        raise MonaiBundleError("%s: spatial_shape %r is not a fixed size; give --input-size HxW that fits it"
                               % (where, shape))
    return int(shape[0]), int(shape[1])


def normalisation(value_range: Any, channels: int, where: str) -> Tuple[List[float], List[float]]:
    """jetseg's mean/std (on frames scaled to [0, 1]) that map [0, 1] onto MONAI's ``value_range`` [a, b].

    ``(x - mean) / std = a + (b - a) x`` gives ``std = 1 / (b - a)`` and ``mean = -a / (b - a)``.
    """
    if value_range is None:
        return [0.0] * channels, [1.0] * channels
    if not (isinstance(value_range, list) and len(value_range) == 2
            and all(isinstance(v, (int, float)) for v in value_range) and value_range[1] > value_range[0]):
        raise MonaiBundleError("%s: value_range is %r; expected [low, high] with low < high" % (where, value_range))
    low, high = float(value_range[0]), float(value_range[1])
    return [0.0 - low / (high - low)] * channels, [1.0 / (high - low)] * channels


def _transforms(config: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Every object with a ``_target_`` inside the inference config's ``postprocessing``, in order."""
    found: List[Dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "_target_" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk((config or {}).get("postprocessing"))
    return found


def _target(node: Dict[str, Any]) -> str:
    return str(node.get("_target_", "")).rsplit(".", 1)[-1]


def output_decoding(bundle: MonaiBundle) -> Dict[str, Any]:
    """``kind`` (softmax or sigmoid) and ``threshold`` from the inference post-processing and the channels."""
    _, out = _one(bundle, "outputs")
    channels = _channels(out, str(bundle.path / METADATA) + " outputs")
    steps = _transforms(bundle.inference)
    sigmoid = any(_target(s) in ("Activations", "Activationsd") and s.get("sigmoid") is True for s in steps)
    softmax = any(_target(s) in ("Activations", "Activationsd") and s.get("softmax") is True for s in steps)
    decoding: Dict[str, Any] = {"kind": "sigmoid" if sigmoid or (channels == 1 and not softmax) else "softmax"}
    for step in steps:
        if _target(step) in ("AsDiscrete", "AsDiscreted") and isinstance(step.get("threshold"), (int, float)):
            decoding["threshold"] = float(step["threshold"])
    return decoding


def spec_data(bundle: MonaiBundle, input_size: Optional[Tuple[int, int]] = None) -> Dict[str, Any]:
    """The jetseg spec (as a mapping) that metadata.json and the inference config describe."""
    where = str(bundle.path / METADATA)
    in_key, inp = _one(bundle, "inputs")
    out_key, out = _one(bundle, "outputs")
    channels = _channels(inp, where + " inputs." + in_key)
    if channels not in (1, 3):
        raise MonaiBundleError("%s inputs.%s: num_channels %d; jetseg feeds 1 (grey) or 3 (colour) channels"
                               % (where, in_key, channels))
    mean, std = normalisation(inp.get("value_range"), channels, where + " inputs." + in_key)
    decoding = output_decoding(bundle)
    out_channels = _channels(out, where + " outputs." + out_key)
    names = _class_names(out.get("channel_def"), out_channels)
    classes = ["background"] + names if decoding["kind"] == "sigmoid" else names
    if decoding["kind"] == "softmax" and out_channels < 2:
        raise MonaiBundleError("%s outputs.%s: softmax over %d channel; expected at least 2 (background first)"
                               % (where, out_key, out_channels))
    in_name, out_name = ("input", "logits")
    if bundle.model_file is not None and bundle.model_file.suffix == ".onnx":
        in_name, out_name = onnx_names(bundle.path / bundle.model_file)
    return {"name": bundle.name, "description": str(bundle.metadata.get("task", "")),
            "input": {"name": in_name, "size": list(_size(inp, where + " inputs." + in_key, input_size)),
                      "channels": channels, "color_order": "gray" if channels == 1 else "rgb",
                      "mean": mean, "std": std},
            "output": dict({"name": out_name}, **decoding), "classes": classes, "colors": None}


def _class_names(channel_def: Any, channels: int) -> List[str]:
    if not isinstance(channel_def, dict):
        return ["class%d" % i for i in range(channels)]
    return [str(channel_def.get(str(i), channel_def.get(i, "class%d" % i))) for i in range(channels)]


# ---------------------------------------------------------------------------------------------- the network
def network_from_config(bundle: MonaiBundle) -> Any:
    """Instantiate ``network_def`` of ``configs/inference.json`` with MONAI (only MONAI's classes, literal args)."""
    if bundle.inference is None or "network_def" not in bundle.inference:
        raise MonaiBundleError("%s has models/model.pt but no network_def in %s; export models/model.ts with "
                               "`python -m monai.bundle ckpt_export` or give the network another way"
                               % (bundle.path, INFERENCE))
    definition = bundle.inference["network_def"]
    _check_literal(definition, "network_def", bundle.path / INFERENCE)
    require("monai", "reading model.pt of a MONAI bundle")
    from monai.bundle import ConfigParser

    parser = ConfigParser({"network_def": definition})
    try:
        return parser.get_parsed_content("network_def")
    except Exception as exc:  # MONAI raises many types for a config it cannot instantiate
        raise MonaiBundleError("MONAI cannot build network_def of %s: %s: %s" % (
            bundle.path / INFERENCE, type(exc).__name__, str(exc).strip().splitlines()[0][:200])) from None


def _check_literal(node: Any, where: str, path: Path) -> None:
    """Refuse expressions, references and non-MONAI targets: a bundle's config never runs code of its own."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and (not isinstance(target, str) or ("." in target and not target.startswith("monai."))):
            raise MonaiBundleError("%s: %s._target_ is %r; jetseg instantiates only MONAI's classes (e.g. UNet or "
                                   "monai.networks.nets.UNet); export models/model.ts instead" % (path, where, target))
        for key, value in node.items():
            if key in ("_mode_", "_requires_"):
                raise MonaiBundleError("%s: %s.%s is not supported; jetseg instantiates plain network "
                                       "definitions only (export models/model.ts instead)" % (path, where, key))
            _check_literal(value, "%s.%s" % (where, key), path)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_literal(value, "%s[%d]" % (where, i), path)
    elif isinstance(node, str) and node[:1] in ("$", "@", "%"):
        raise MonaiBundleError("%s: %s is %r, an expression or reference; jetseg runs no code from a bundle, so "
                               "network_def needs literal arguments (or export models/model.ts)"
                               % (path, where, node))


def onnx_names(path: Path) -> Tuple[str, str]:
    """The first input and output names of an ONNX file (a MONAI bundle's ``models/model.onnx``)."""
    onnx = require("onnx", "reading a MONAI bundle's model.onnx")
    proto = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i.name for i in proto.graph.input if i.name not in initializers]
    if not inputs or not proto.graph.output:
        raise MonaiBundleError("%s has no input or no output; expected the bundle's network" % path)
    return inputs[0], proto.graph.output[0].name


def export_monai(bundle: MonaiBundle, spec: Spec, keep: Optional[Dict[str, bytes]] = None,
                 batch: Optional[Union[int, str]] = None) -> Tuple[bytes, Dict[str, Any]]:
    """Checked ONNX bytes from the bundle's ``models/model.onnx``, ``model.ts`` or ``model.pt`` (+ network_def).

    ``spec`` (from :func:`spec_data`, perhaps with the user's overrides) must name the ONNX file's tensors for
    the ``model.onnx`` route; ``keep`` receives ``model.ts`` (the PyTorch reference) for the TorchScript route.
    ``batch`` is :func:`jetseg.models.export.export_model`'s (PyTorch routes only).
    Returns ``(onnx_bytes, info)`` like :func:`jetseg.models.export.export_model`, plus the MONAI provenance.
    """
    from jetseg.models.export import export_model, export_torch, load_weights

    if bundle.model_file is None:
        raise MonaiBundleError("%s has none of %s; expected the network in one of them"
                               % (bundle.path, ", ".join(str(f) for f in MODEL_FILES)))
    path = bundle.path / bundle.model_file
    if path.suffix == ".pt":
        model = network_from_config(bundle)
        load_weights(model, path)
        info: Dict[str, Any] = {"source": str(path), "route": "monai-config"}
        data = export_torch(model, spec, info, batch if batch is not None else 1)
    else:
        data, info = export_model(str(path), spec, keep=keep, batch=batch)
        info["route"] = "monai-" + info["route"]
    info["monai_bundle"] = bundle.provenance()
    return data, info
