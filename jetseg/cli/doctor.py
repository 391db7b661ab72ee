"""`jetseg doctor`: what this machine can do, and what is missing with how to get it."""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from typing import Any, Dict, List, Optional, Tuple

HELP = "describe this machine: platform, versions, backends, GPU/DLA/TensorRT, OpenCV GStreamer, power mode"

PACKAGES = ("numpy", "yaml", "cv2", "onnx", "onnxruntime", "openvino", "torch", "pydicom", "nibabel",
            "prometheus_client", "matplotlib", "tensorrt", "torch2trt", "jtop")

#: The CUDA runtime library the trt backend calls through ctypes (jetson/trt/cuda.py): a library, not a module.
CUDART = "libcudart"

# backend -> (python modules or libraries it needs, needs an NVIDIA GPU)
BACKEND_NEEDS: Dict[str, Tuple[List[str], bool]] = {
    "onnxrt": (["onnxruntime"], False),
    "openvino": (["openvino"], False),
    "torch": (["torch"], False),
    "trt": (["tensorrt", CUDART], True),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--model", metavar="BUNDLE",
                        help="the bundle whose --backend auto choice to explain (default: the one 'jetseg run' "
                             "runs without --model, the bundled ultrasound model)")


def package_versions() -> Dict[str, str]:
    from jetseg import trtcompat
    from jetseg.optional import available

    out = {}
    for name in PACKAGES:
        if not available(name):
            out[name] = "not installed"
            continue
        if name == "tensorrt":  # the stubs package is not TensorRT; available() already rejects it
            out[name] = trtcompat.installed_version() or "not installed (no __version__: type stubs only)"
            continue
        try:
            mod = __import__(name)
            out[name] = str(getattr(mod, "__version__", "installed"))
        except Exception as exc:  # a broken install is reported, not hidden
            out[name] = "broken: %s" % str(exc).splitlines()[0]
    out[CUDART] = cuda_runtime()
    return out


def cuda_runtime() -> str:
    """``11.4 (/usr/local/cuda-11.4/lib64/libcudart.so.11.0)``, ``not installed`` or ``broken: <why>``."""
    from jetseg.errors import DeviceError
    from jetseg.jetson.trt import cudart

    path = cudart.find_library()
    if path is None:
        return "not installed"
    try:
        number = cudart.CudaRuntime(path).runtime_version()
    except DeviceError as exc:
        return "broken: %s" % exc
    return "%d.%d (%s)" % (number // 1000, number % 1000 // 10, path)


def opencv_gstreamer() -> str:
    from jetseg.optional import available

    if not available("cv2"):
        return "no OpenCV"
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _missing(versions: Dict[str, str], name: str) -> bool:
    return versions.get(name, "not installed").startswith(("not", "broken"))


def backends(versions: Dict[str, str], has_gpu: bool) -> List[Tuple[str, bool, str]]:
    from jetseg.jetson.runners import RUNNERS

    rows = []
    for name in RUNNERS.names():
        modules, gpu = BACKEND_NEEDS.get(name, ([], False))
        missing = [n for n in modules if _missing(versions, n)]
        if gpu and not has_gpu:
            missing.append("an NVIDIA GPU")
        rows.append((name, not missing, RUNNERS.describe(name) if not missing else "needs " + ", ".join(missing)))
    return rows


def auto_backend(model: Optional[str] = None) -> Dict[str, Any]:
    """What ``--backend auto`` runs here for ``model`` and why (the same choice and reason as ``jetseg run
    --model model``; default: the bundled model ``jetseg run`` runs), and the default inference threads of
    backends on the CPU."""
    from jetseg.bundle import Bundle
    from jetseg.errors import JetsegError
    from jetseg.jetson.daemon.assembly import default_bundle
    from jetseg.jetson.runners import choose_backend, default_threads, usable_cores

    try:
        bundle: Optional[Bundle] = Bundle(model or default_bundle())
    except JetsegError:
        if model:  # a --model that is not a bundle: one line, like every command
            raise
        bundle = None  # an install without the bundled models: the machine's part of the choice only
    name, why = choose_backend(bundle)
    return {"name": name, "reason": why, "bundle": str(bundle.path) if bundle is not None else None,
            "cpu_threads": default_threads(), "usable_cores": usable_cores()}


def todo(info: Dict[str, Any]) -> List[str]:
    """What is missing, each with how to get it."""
    from jetseg.optional import HINTS

    dev = info["device"]
    versions = info["packages"]
    out = []
    if dev["is_jetson"]:
        for name in ("tensorrt", CUDART, "onnxruntime", "torch"):
            if _missing(versions, name):
                out.append("%s: %s" % (name, HINTS.get(name, "pip install " + name)))
        if not str(info["opencv_gstreamer"]).upper().startswith("YES"):
            out.append("OpenCV without GStreamer: use JetPack's python3-opencv (apt) and a venv with "
                       "--system-site-packages; remove pip's opencv-python from the venv")
        if _missing(versions, "jtop") and not info["telemetry"]["tegrastats"]:
            out.append("telemetry: neither tegrastats nor jtop found; install nvidia-l4t-tools or "
                       "pip install jetson-stats")
        if dev["jetson_clocks"] is False:
            out.append("clocks are not pinned: run 'sudo jetson_clocks' before benchmarking")
        if dev["jetpack"] is None and dev["l4t"]:
            out.append("L4T %s is not in jetseg's JetPack table; TensorRT engines still work" % dev["l4t"])
    else:
        out.append("TensorRT/DLA: this is not a Jetson; 'jetseg build' and the trt backend run on the device "
                   "(flash JetPack 5.1 on the Xavier, clone, ./setup.sh)")
        if not dev["gpu_device_nodes"]:
            out.append("no NVIDIA GPU here: use --backend openvino or onnxrt (CPU), or torch")
        if not str(info["opencv_gstreamer"]).upper().startswith("YES"):
            from jetseg.jetson.sources.pipelines import without_gstreamer

            out.append("OpenCV has no GStreamer here: %s; files and folders work without (Debian's python3-opencv "
                       "has GStreamer; pip wheels do not)" % without_gstreamer())
        for name in ("onnxruntime", "cv2"):
            if _missing(versions, name):
                out.append("%s: %s" % (name, HINTS.get(name, "pip install " + name)))
    return out


def report(model: Optional[str] = None) -> Dict[str, Any]:
    import jetseg
    from jetseg import trtcompat
    from jetseg.jetson.device.info import describe

    device = describe()
    versions = package_versions()
    has_gpu = bool(device.gpu_device_nodes)
    info: Dict[str, Any] = {
        "jetseg": jetseg.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": device.to_dict(),
        "packages": versions,
        "opencv_gstreamer": opencv_gstreamer(),
        "telemetry": {"tegrastats": shutil.which("tegrastats") is not None,
                      "jtop": not _missing(versions, "jtop")},
        "backends": [{"name": n, "usable": ok, "note": note} for n, ok, note in backends(versions, has_gpu)],
        "auto_backend": auto_backend(model),
    }
    if device.tensorrt:
        info["tensorrt_features"] = trtcompat.features(device.tensorrt).to_dict()
    if device.is_jetson:
        from jetseg.jetson.device.telemetry import sample_once

        info["telemetry"]["now"] = sample_once()
    info["missing"] = todo(info)
    return info


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and "name" in value:
        return "%s (mode %s)" % (value["name"], value.get("id"))
    return str(value)


def _now(sample: Any) -> str:
    """``9.1 W, GPU 12% @ 1377 MHz, hottest 41.5 C (GPU)`` from a telemetry sample (Xavier's constant PMIC
    reading is not a sensor and never counts)."""
    from jetseg.jetson.device.tegrastats import hottest

    if not sample:
        return "-"
    parts = []
    if sample.get("power_total_mw") is not None:
        parts.append("%.1f W" % (sample["power_total_mw"] / 1000.0))
    if sample.get("gpu_load_pct") is not None:
        freq = sample.get("gpu_freq_mhz")
        parts.append("GPU %s%%%s" % (sample["gpu_load_pct"], " @ %s MHz" % freq if freq else ""))
    top = hottest(sample.get("temps_c") or {})
    if top is not None:
        parts.append("hottest %.1f C (%s)" % (top[1], top[0]))
    return ", ".join(parts) or "-"


def run(args: argparse.Namespace) -> int:
    info = report(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    dev = info["device"]
    print("jetseg %s on Python %s, %s" % (info["jetseg"], info["python"], info["platform"]))
    print("\ndevice:")
    if dev["is_jetson"]:
        rows = [("model", dev["model"]), ("SoC", "%s (%s, sm%s)" % (dev["soc"], dev["soc_id"], dev["compute_capability"])),
                ("L4T / JetPack", "%s / %s" % (_show(dev["l4t"]), _show(dev["jetpack"]))),
                ("power mode", dev["nvpmodel"]), ("jetson_clocks", dev["jetson_clocks"]),
                ("DLA cores", dev["dla_cores"]), ("CUDA", dev["cuda"]), ("TensorRT", dev["tensorrt"]),
                ("telemetry", ", ".join(k for k in ("tegrastats", "jtop") if info["telemetry"][k]) or "none"),
                ("now", _now(info["telemetry"].get("now")))]
    else:
        rows = [("Jetson", "no (%s)" % info["machine"]),
                ("NVIDIA GPU", ", ".join(dev["gpu_device_nodes"]) or "none"),
                ("CUDA", dev["cuda"]), ("TensorRT", dev["tensorrt"] or "not installed")]
    for label, value in rows:
        print("  %-16s %s" % (label, _show(value)))
    print("\npackages:")
    for name, version in info["packages"].items():
        print("  %-18s %s" % (name, version))
    print("\nOpenCV GStreamer: %s" % info["opencv_gstreamer"])
    print("\nbackends:")
    for row in info["backends"]:
        print("  %-8s %-4s %s" % (row["name"], "yes" if row["usable"] else "no", row["note"]))
    auto = info["auto_backend"]
    print("\n--backend auto%s: %s (%s)" % (" for %s" % auto["bundle"] if auto["bundle"] else "", auto["name"],
                                            auto["reason"]))
    print("default threads of backends on the CPU (threads=0): %d (of %d usable cores: one is left to the "
          "pipeline); on a GPU, the runtime's own" % (auto["cpu_threads"], auto["usable_cores"]))
    if info["missing"]:
        print("\nmissing, and how to get it:")
        for line in info["missing"]:
            print("  - " + line)
    return 0
