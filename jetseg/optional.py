"""Lazy imports of optional dependencies, with an install hint when one is missing.

Nothing is ever installed at run time. ``require("onnxruntime")`` returns the module or raises a
:class:`~jetseg.errors.DependencyError` that says which extra or command provides it. A module that is
installed but fails to import (a broken install) is *not* hidden: its ImportError propagates.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Dict

from jetseg.errors import DependencyError

# module -> how to get it
HINTS: Dict[str, str] = {
    "torch": "run ./setup.sh (x86: pip install torch==2.13.0; Jetson: NVIDIA's PyTorch wheel)",
    "onnx": "pip install 'jetseg[onnx]'",
    "onnxruntime": "pip install 'jetseg[onnx]' (onnxruntime-gpu on a Jetson)",
    "openvino": "pip install 'jetseg[openvino]' (x86 hosts; ./setup.sh installs it there)",
    "cv2": "pip install 'jetseg[opencv]' (on a Jetson use JetPack's python3-opencv instead)",
    "pydicom": "pip install 'jetseg[scans]'",
    "nibabel": "pip install 'jetseg[scans]'",
    "SimpleITK": "pip install 'jetseg[scans]'",
    "highdicom": "pip install 'jetseg[scans]'",
    "monai": "pip install 'jetseg[monai]' (x86: ./setup.sh installs it; it needs a recent PyTorch)",
    "tqdm": "pip install tqdm",
    "prometheus_client": "pip install 'jetseg[runtime]'",
    "matplotlib": "pip install 'jetseg[bench]'",
    "psutil": "pip install psutil",
    "tensorrt": "TensorRT comes with JetPack (python3-libnvinfer); use a venv with --system-site-packages",
    "libcudart": "the CUDA runtime comes with JetPack (sudo apt-get install nvidia-jetpack); jetseg looks for "
                 "/usr/local/cuda-11.4/lib64/libcudart.so.11.0, /usr/local/cuda/lib64/libcudart.so, libcudart.so",
    "torch2trt": "on a Jetson: ./setup.sh --with-torch2trt installs it from source",
    "jtop": "pip install jetson-stats (Jetson only)",
}


def available(name: str) -> bool:
    """True when ``name`` can be found (without importing it).

    A bare namespace package does not count: ``tensorrt-stubs`` installs a ``tensorrt`` folder of ``.pyi``
    files only, which imports but has no TensorRT in it.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def require(name: str, purpose: str = "") -> ModuleType:
    """Import ``name`` or raise a DependencyError naming what needs it and how to install it.

    A module another thread is importing right now (two streams opening their first synthetic source) is
    waited for, not looked up: mid-import, its spec can be missing and it would read as not installed."""
    if name in sys.modules:
        return importlib.import_module(name)  # takes the module's import lock: returns it initialised
    if not available(name):
        top = name.split(".")[0]
        hint = HINTS.get(top, "pip install " + top)
        need = " (needed for %s)" % purpose if purpose else ""
        raise DependencyError("%s is not installed%s; %s" % (top, need, hint))
    return importlib.import_module(name)
