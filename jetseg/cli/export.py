"""`jetseg export`: a user's model (ONNX, TorchScript or a Python factory) -> a checked bundle."""
from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional

from jetseg.bundle import OVERWRITE_HELP
from jetseg.errors import JetsegError

HELP = ("check or export a user's model (MODEL.onnx, MODEL.ts, pkg.mod:factory, a MONAI bundle) into a bundle; "
        "or a bundle as a Triton model repository (--triton REPO BUNDLE) or DeepStream configs (--deepstream DIR BUNDLE)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="MODEL.onnx, MODEL.ts (TorchScript), package.module:factory or a "
                        "MONAI bundle folder (configs/metadata.json: the spec comes from it; the flags below override "
                        "it); with --triton: the BUNDLE to export")
    parser.add_argument("--out", default=None, metavar="BUNDLE", help="bundle directory to write")
    triton = parser.add_argument_group("Triton model repository (docs/scale.md)")
    triton.add_argument("--triton", default=None, metavar="REPO",
                        help="write BUNDLE as REPO/<name>/ (config.pbtxt + 1/model.onnx or 1/model.plan)")
    triton.add_argument("--platform", choices=("onnxruntime_onnx", "tensorrt_plan"), default="onnxruntime_onnx",
                        help="onnxruntime_onnx (x86/GPU servers) or tensorrt_plan (Triton on the Jetson; needs --engine)")
    triton.add_argument("--engine", default=None, metavar="FILE", help="the plan 'jetseg build' made on the serving device")
    triton.add_argument("--triton-name", default=None, help="model name on the server (default: the bundle's name)")
    triton.add_argument("--max-batch", type=int, default=None,
                        help="Triton's max_batch_size: 0 for a model with a fixed batch of 1, else the largest batch "
                        "its dynamic batcher forms (the model's batch axis must be dynamic); default 0, for a plan "
                        "the engine's batch from its build.json")
    triton.add_argument("--queue-delay-us", type=int, default=2000, help="dynamic batching: longest wait to fill a batch")
    deepstream = parser.add_argument_group("DeepStream 6.2/6.3 configs (docs/scale.md)")
    deepstream.add_argument("--deepstream", default=None, metavar="DIR",
                            help="write BUNDLE as DIR/ (nvinfer_config.txt, deepstream_app_config.txt, model.onnx; "
                            "--engine FILE is copied and named as model-engine-file)")
    deepstream.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                            help="nvinfer's network-mode (default int8 for an INT8 bundle with a cache, else fp16)")
    deepstream.add_argument("--sources", type=int, default=1, help="file sources in the deepstream-app config")
    parser.add_argument("--weights", default=None, metavar="W.pt",
                        help="state_dict for a TorchScript or factory model (loaded weights-only)")
    parser.add_argument("--module-path", default=None, metavar="DIR",
                        help="folder to import pkg.mod of a pkg.mod:factory model from (instead of PYTHONPATH)")
    parser.add_argument("--spec", default=None, metavar="spec.yaml", help="the model's spec (else the flags below)")
    parser.add_argument("--task", choices=("segmentation", "enhancement", "registration"), default=None,
                        help="what the model does (default: the spec's, else segmentation); enhancement: image "
                             "to image, see --output-range; registration: moving (--input-name) + fixed image "
                             "(--fixed-input) -> displacement field in pixels (docs/tasks.md)")
    parser.add_argument("--fixed-input", default=None, metavar="NAME",
                        help="registration: the fixed image's input name (default fixed)")
    parser.add_argument("--warped-output", default=None, metavar="NAME",
                        help="registration: the model's warped-image output, if it has one")
    parser.add_argument("--output-range", default=None, metavar="LOW,HIGH",
                        help="enhancement: the output image's value range (default 0,1)")
    parser.add_argument("--input-size", default=None, metavar="HxW", help="model input size, e.g. 256x256")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=None, help="input channels (1 grey, 3 colour)")
    parser.add_argument("--color-order", choices=("gray", "rgb", "bgr"), default=None,
                        help="what a 3-channel model expects (default rgb)")
    parser.add_argument("--classes", default=None, help="class names, background first: background,lesion")
    parser.add_argument("--mean", default=None, help="normalisation mean (one number or one per channel, on [0,1])")
    parser.add_argument("--std", default=None, help="normalisation std (one number or one per channel, on [0,1])")
    parser.add_argument("--output-kind", choices=("softmax", "sigmoid"), default=None,
                        help="softmax over the classes (default) or sigmoid, one channel per foreground class "
                        "(multi-label when several); whether the model gives logits or probabilities is read "
                        "from its last node")
    parser.add_argument("--input-name", default=None, help="ONNX input name (default input)")
    parser.add_argument("--output-name", default=None, help="ONNX output name (default logits)")
    parser.add_argument("--batch", default=None, metavar="N|dynamic",
                        help="PyTorch models: the exported batch axis, a fixed N or dynamic (for several streams in "
                        "one daemon, Triton's dynamic batching and jetseg build --batch; docs/scale.md); default 1; "
                        "an ONNX file keeps its own")
    parser.add_argument("--roi", default=None, metavar="X,Y,W,H", help="crop applied to frames before resizing")
    parser.add_argument("--name", default=None, help="model name in the spec (default: the bundle's folder name)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _numbers(text: Optional[str], flag: str) -> Optional[List[float]]:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise JetsegError("%s %r is invalid; expected a number or comma-separated numbers" % (flag, text)) from None


def build_spec(args: argparse.Namespace, base: Optional[Dict[str, Any]] = None) -> Any:
    """The spec from --spec, else ``base`` (a MONAI bundle's), else the flags (which override either)."""
    from pathlib import Path

    from jetseg.cli.train import parse_classes, parse_size
    from jetseg.spec import Spec

    if args.spec:
        data: Dict[str, Any] = Spec.load(args.spec).to_dict()
    elif base is not None:
        data = base
    else:
        if args.input_size is None or args.channels is None:
            raise JetsegError("without --spec, give at least --input-size HxW and --channels 1|3 (and --classes, "
                              "--mean, --std as the model was trained)")
        data = {"name": args.name or Path(args.out).name, "input": {}, "output": {}}
    inp, out = data.setdefault("input", {}), data.setdefault("output", {})
    if args.input_size is not None:
        inp["size"] = list(parse_size(args.input_size))
    if args.channels is not None:
        inp["channels"] = args.channels
        inp.setdefault("color_order", "gray" if args.channels == 1 else "rgb")
        if args.channels == 1:
            inp["color_order"] = "gray"
        elif inp.get("color_order") == "gray":
            inp["color_order"] = "rgb"
    if args.color_order is not None:
        inp["color_order"] = args.color_order
    channels = int(inp.get("channels", 1))
    for key in ("mean", "std"):
        values = _numbers(getattr(args, key), "--" + key)
        if values is not None:
            inp[key] = values * channels if len(values) == 1 else values
        elif key not in inp:
            inp[key] = [0.0 if key == "mean" else 1.0] * channels
    if args.roi is not None:
        roi = _numbers(args.roi, "--roi")
        inp["roi"] = [int(v) for v in roi or []]
    if args.input_name:
        inp["name"] = args.input_name
    if args.output_name:
        out["name"] = args.output_name
    if args.output_kind:
        out["kind"] = args.output_kind
    classes = parse_classes(args.classes)
    if classes is not None:
        data["classes"] = classes
        data["colors"] = None
    if args.name:
        data["name"] = args.name
    if args.task is not None:
        data["task"] = args.task
    if data.get("task") == "enhancement":  # the image comes back with the input's channels unless told
        data["enhancement"] = dict({"channels": channels}, **(data.get("enhancement") or {}))
    if data.get("task") == "registration":
        data["registration"] = dict(data.get("registration") or {}, **{k: getattr(args, k) for k in (
            "fixed_input", "warped_output") if getattr(args, k)})
    elif args.fixed_input or args.warped_output:
        raise JetsegError("--fixed-input and --warped-output apply to registration models; add --task registration")
    if args.output_range is not None:
        if data.get("task") != "enhancement":
            raise JetsegError("--output-range applies to enhancement models; add --task enhancement")
        values = _numbers(args.output_range, "--output-range") or []
        if len(values) != 2:
            raise JetsegError("--output-range %r is invalid; expected LOW,HIGH such as 0,1" % args.output_range)
        data.setdefault("enhancement", {})
        data["enhancement"] = dict(data["enhancement"] or {}, range=values)
    return Spec.from_dict(data)


def export_triton(args: argparse.Namespace) -> int:
    """``--triton REPO BUNDLE``: the bundle as a Triton model repository."""
    from pathlib import Path

    from jetseg.bundle import Bundle
    from jetseg.models.triton import write_repository

    if args.out is not None:
        raise JetsegError("--triton REPO exports an existing bundle (MODEL is the bundle); drop --out %s" % args.out)
    folder = write_repository(Path(args.triton), Bundle(args.model), args.platform, name=args.triton_name or "",
                              engine=Path(args.engine) if args.engine else None, max_batch_size=args.max_batch,
                              queue_delay_us=args.queue_delay_us)
    print("wrote %s (%s, %s); clients preprocess as the spec says (docs/scale.md)"
          % (folder, args.platform, next(line for line in (folder / "config.pbtxt").read_text().splitlines()
                                         if line.startswith("max_batch_size"))))
    return 0


def export_deepstream(args: argparse.Namespace) -> int:
    """``--deepstream DIR BUNDLE``: the bundle as DeepStream nvinfer and deepstream-app configs."""
    from pathlib import Path

    from jetseg.bundle import Bundle
    from jetseg.models.deepstream import NVINFER_FILE, write_configs

    if args.out is not None:
        raise JetsegError("--deepstream DIR exports an existing bundle (MODEL is the bundle); drop --out %s" % args.out)
    folder = write_configs(Path(args.deepstream), Bundle(args.model), sources=args.sources,
                           engine=Path(args.engine) if args.engine else None, precision=args.precision)
    print("wrote %s (%s; edit the source uris); not run here: docs/scale.md" % (folder, NVINFER_FILE))
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.triton is not None and args.deepstream is not None:
        raise JetsegError("give --triton REPO or --deepstream DIR, not both")
    if args.triton is not None:
        return export_triton(args)
    if args.deepstream is not None:
        return export_deepstream(args)
    if args.out is None:
        raise JetsegError("give --out BUNDLE (the bundle directory to write), or --triton REPO to export a bundle")

    from jetseg.bundle import (
        TORCHSCRIPT_FILE,
        WEIGHTS_FILE,
        check_out,
        command_line,
        save_bundle,
        sha256_file,
    )
    from jetseg.cli.train import parse_size
    from jetseg.models.export import export_model, parse_batch
    from jetseg.models.monai_bundle import export_monai, is_monai_bundle, read_bundle, spec_data

    if args.weights is not None:
        if not Path(args.weights).is_file():
            raise JetsegError("--weights %s does not exist; expected a PyTorch state_dict file" % args.weights)
    inputs = [Path(args.model) if Path(args.model).exists() else None, args.weights, args.module_path]
    batch = parse_batch(args.batch) if args.batch is not None else None
    check_out(args.out, args.overwrite, inputs)  # before the export's work; never an input
    keep: Dict[str, bytes] = {}
    module_path = str(Path(args.module_path).resolve()) if args.module_path else None
    if is_monai_bundle(args.model):
        if args.weights or args.module_path:
            raise JetsegError("%s is a MONAI bundle: its weights come from its models/ folder; drop --weights and "
                              "--module-path" % args.model)
        monai = read_bundle(args.model)
        size = parse_size(args.input_size) if args.input_size else None
        spec = build_spec(args, spec_data(monai, input_size=size))
        data, info = export_monai(monai, spec, keep=keep, batch=batch)
    else:
        spec = build_spec(args)
        data, info = export_model(args.model, spec, weights=args.weights, module_path=module_path, keep=keep,
                                  batch=batch)
    provenance: Dict[str, Any] = {"command": command_line(), "tool": "jetseg export", "export": info}
    extra: Dict[str, Any] = dict(keep)
    if TORCHSCRIPT_FILE in keep:  # the torch runner and the naive-loop row run it as the PyTorch reference
        provenance["architecture"] = {"torchscript": TORCHSCRIPT_FILE}
    if args.weights:
        provenance["export"]["weights_sha256"] = sha256_file(args.weights)
        if info.get("route") == "factory":
            provenance["architecture"] = {"factory": args.model}
            if module_path:
                provenance["architecture"]["module_path"] = module_path
        extra[WEIGHTS_FILE] = args.weights
    bundle = save_bundle(args.out, data, spec, extra_files=extra, provenance=provenance, overwrite=args.overwrite,
                         inputs=inputs)
    diff = info.get("max_abs_diff_vs_torch")
    check = "; ONNX Runtime vs PyTorch max |diff| %.2g" % diff if diff is not None else ""
    import onnx

    from jetseg.onnxgraph import dims

    graph = onnx.load_from_string(data).graph
    shape = next(dims(i) for i in graph.input if i.name == spec.input.name)  # the batch as exported: N or a number
    print("wrote %s (%s, input %s, classes %s%s)" % (bundle.path, info["route"], shape, ",".join(spec.classes), check))
    return 0
