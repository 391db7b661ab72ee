"""`jetseg doctor`: what this machine can do, and what is missing with how to get it."""
from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any, Dict, List, Tuple

HELP = "describe this machine: platform, versions, backends, GPU/DLA/TensorRT, OpenCV GStreamer"

PACKAGES = ("numpy", "yaml", "cv2", "onnx", "onnxruntime", "torch", "pydicom", "nibabel",
            "prometheus_client", "matplotlib", "tensorrt", "pycuda")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def package_versions() -> Dict[str, str]:
    from jetseg.optional import available

    out = {}
    for name in PACKAGES:
        if not available(name):
            out[name] = "not installed"
            continue
        try:
            mod = __import__(name)
            out[name] = str(getattr(mod, "__version__", "installed"))
        except Exception as exc:  # a broken install is reported, not hidden
            out[name] = "broken: %s" % str(exc).splitlines()[0]
    return out


def opencv_gstreamer() -> str:
    from jetseg.optional import available

    if not available("cv2"):
        return "no OpenCV"
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def backends(versions: Dict[str, str]) -> List[Tuple[str, bool, str]]:
    from jetseg.jetson.runners import RUNNERS

    rows = []
    for name in RUNNERS.names():
        need = {"onnxrt": ["onnxruntime"], "torch": ["torch"], "trt": ["tensorrt", "pycuda"]}.get(name, [])
        missing = [n for n in need if versions.get(n, "not installed").startswith(("not", "broken"))]
        rows.append((name, not missing, RUNNERS.describe(name) if not missing
                     else "needs " + ", ".join(missing)))
    return rows


def report() -> Dict[str, Any]:
    import jetseg

    versions = package_versions()
    info: Dict[str, Any] = {
        "jetseg": jetseg.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": versions,
        "opencv_gstreamer": opencv_gstreamer(),
        "backends": [{"name": n, "usable": ok, "note": note} for n, ok, note in backends(versions)],
    }
    return info


def run(args: argparse.Namespace) -> int:
    info = report()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("jetseg %s on Python %s, %s" % (info["jetseg"], info["python"], info["platform"]))
    print("\npackages:")
    for name, version in info["packages"].items():
        print("  %-18s %s" % (name, version))
    print("\nOpenCV GStreamer: %s" % info["opencv_gstreamer"])
    print("\nbackends:")
    for row in info["backends"]:
        print("  %-8s %-4s %s" % (row["name"], "yes" if row["usable"] else "no", row["note"]))
    return 0
