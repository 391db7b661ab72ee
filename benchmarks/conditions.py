"""The conditions a benchmark ran under: machine, CPU, GPU, versions, threads, power mode, clocks, load.

A number without its conditions means nothing (fps depend on the power mode on a Jetson and on the
neighbours on a shared machine), so every report carries this block.
"""
from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from jetseg.optional import available


def _read(path: str) -> Optional[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "Model") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()


def device_model() -> Optional[str]:
    """The board (``NVIDIA Jetson AGX Xavier Developer Kit``) from the device tree, if there is one."""
    return _read("/proc/device-tree/model")


def gpu() -> str:
    """A short description of the GPU, or ``none``."""
    model = device_model()
    if model and "jetson" in model.lower():
        return "integrated (%s)" % model
    smi = shutil.which("nvidia-smi")
    if smi:
        out = _run([smi, "--query-gpu=name", "--format=csv,noheader"])
        if out:
            return out.splitlines()[0]
    return "none"


def _run(cmd: List[str], timeout: float = 5.0) -> Optional[str]:
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              text=True, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def power_mode() -> str:
    """``nvpmodel -q`` (Jetson power mode), or ``n/a``."""
    tool = shutil.which("nvpmodel")
    out = _run([tool, "-q"]) if tool else None
    if not out:
        return "n/a"
    lines = [ln.strip() for ln in out.splitlines() if ln.strip() and not ln.startswith("NVPM WARN")]
    return "; ".join(lines) or "n/a"


def clocks() -> Dict[str, Any]:
    """CPU governor and frequencies (first core), GPU frequency on a Jetson; what /sys shows."""
    out: Dict[str, Any] = {}
    base = "/sys/devices/system/cpu/cpu0/cpufreq/"
    for key, name in (("scaling_governor", "cpu_governor"), ("scaling_cur_freq", "cpu_cur_khz"),
                      ("scaling_max_freq", "cpu_max_khz")):
        value = _read(base + key)
        if value:
            out[name] = value
    for path in ("/sys/devices/gpu.0/devfreq/17000000.gv11b/cur_freq",  # Xavier
                 "/sys/devices/platform/gpu.0/devfreq/17000000.ga10b/cur_freq"):  # Orin
        value = _read(path)
        if value:
            out["gpu_cur_hz"] = value
    return out or {"note": "n/a (no cpufreq in this machine's /sys)"}


DISTRIBUTIONS = {"numpy": ("numpy",), "onnxruntime": ("onnxruntime", "onnxruntime-gpu"), "torch": ("torch",),
                 "cv2": ("opencv-python-headless", "opencv-python", "opencv-contrib-python"),
                 "tensorrt": ("tensorrt",)}


def _version(module: str) -> str:
    """A module's version without importing it when possible (importing torch alone adds ~300 MB RSS)."""
    mod = sys.modules.get(module)
    if mod is not None:
        return str(getattr(mod, "__version__", "?"))
    if not available(module):  # tensorrt-stubs' bare namespace package does not count
        return "not installed"
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8 has no importlib.metadata
        metadata = None  # type: ignore[assignment]
    if metadata is not None:
        for dist in DISTRIBUTIONS.get(module, (module,)):
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
    import importlib  # a system package without metadata (JetPack's cv2, tensorrt): ask the module

    return str(getattr(importlib.import_module(module), "__version__", "?"))


def versions() -> Dict[str, str]:
    """Versions of everything that shapes the numbers (a module not installed says so)."""
    import jetseg

    out = {"python": platform.python_version(), "jetseg": jetseg.__version__}
    for name, module in (("numpy", "numpy"), ("onnxruntime", "onnxruntime"), ("openvino", "openvino"), ("torch", "torch"),
                         ("opencv", "cv2"), ("tensorrt", "tensorrt")):
        out[name] = _version(module)
    return out


def threads() -> Dict[str, Any]:
    out: Dict[str, Any] = {"cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                           else os.cpu_count()}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            out[var] = os.environ[var]
    from jetseg.jetson.runners import default_threads

    out["jetseg_cpu_runner_default"] = default_threads()
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    if "cv2" in sys.modules:
        out["opencv"] = sys.modules["cv2"].getNumThreads()
    return out


def load_average() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def collect(command: Optional[str] = None) -> Dict[str, Any]:
    """Everything above, plus the date (UTC) and the command line."""
    from jetseg.bundle import command_line

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "command": command if command is not None else command_line(),
        "machine": {"hostname": platform.node(), "platform": platform.platform(), "arch": platform.machine(),
                    "cpu": cpu_model(), "cores": os.cpu_count(), "device": device_model() or "n/a",
                    "gpu": gpu()},
        "versions": versions(),
        "threads": threads(),
        "power_mode": power_mode(),
        "clocks": clocks(),
        "load_average_start": load_average(),
    }
