"""What device this is: Jetson model, SoC, L4T/JetPack, power mode, clocks, DLA cores, CUDA and TensorRT.

Everything is read from files and tools JetPack ships (``/etc/nv_tegra_release``, ``/proc/device-tree``,
``nvpmodel -q``, devfreq in sysfs); nothing needs root. Every reader takes ``root`` so tests can build a fake
file tree. The parsers are pure functions, unit-tested on sample output.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

# compatible string -> (short SoC name, compute capability, DLA cores when sysfs does not say)
SOCS: Dict[str, Tuple[str, str, int]] = {
    "tegra210": ("nano", "53", 0),
    "tegra186": ("tx2", "62", 0),
    "tegra194": ("xavier", "72", 2),
    "tegra234": ("orin", "87", 2),
}

# L4T release -> JetPack (NVIDIA's release notes). Unknown releases are reported as "unknown".
JETPACK: Dict[str, str] = {
    "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4", "32.7.5": "4.6.5",
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "35.6.1": "5.1.5",
    "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1",
}


#: L4T writes this file on every Jetson.
TEGRA_RELEASE = "/etc/nv_tegra_release"


def on_jetson(root: str = "/") -> bool:
    """True on an NVIDIA Jetson (L4T's /etc/nv_tegra_release exists)."""
    return os.path.exists(os.path.join(root, TEGRA_RELEASE.lstrip("/")))


def _read(root: str, path: str) -> Optional[str]:
    try:
        with open(os.path.join(root, path.lstrip("/")), "rb") as fh:
            return fh.read().decode("utf-8", "replace").replace("\x00", "\n").strip()
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------- parsers
def parse_tegra_release(text: str) -> Optional[str]:
    """``# R35 (release), REVISION: 3.1, ...`` -> ``"35.3.1"``; None if the text is not recognised."""
    match = re.search(r"#\s*R(\d+)\s*\(\w+\),\s*REVISION:\s*(\d+)\.(\d+)", text or "")
    if not match:
        return None
    return "%s.%s.%s" % match.groups()


def jetpack_for(l4t: Optional[str]) -> Optional[str]:
    """The JetPack release of an L4T version, or None when the table does not know it."""
    return JETPACK.get(l4t or "")


def soc_from_compatible(text: str) -> Optional[str]:
    """``nvidia,p2972-0000\\nnvidia,tegra194`` -> ``"tegra194"``."""
    match = re.search(r"nvidia,(tegra\d+)", text or "")
    return match.group(1) if match else None


def parse_nvpmodel(text: str) -> Optional[Dict[str, Any]]:
    """``nvpmodel -q`` output -> ``{"id": 2, "name": "MODE_15W"}`` (None if not recognised).

    The output is ``NV Power Mode: MODE_15W`` then the mode number on its own line (possibly after
    ``NV Fan Mode:`` lines and warnings).
    """
    name = None
    mode_id = None
    for line in (text or "").splitlines():
        line = line.strip()
        match = re.match(r"NV Power Mode\s*:\s*(\S+)", line)
        if match:
            name = match.group(1)
        elif re.fullmatch(r"\d+", line) and name is not None and mode_id is None:
            mode_id = int(line)
    if name is None:
        return None
    return {"id": mode_id, "name": name}


def parse_jetson_clocks(text: str) -> Optional[bool]:
    """``jetson_clocks --show`` output -> True when the GPU clock is pinned (min == max == current)."""
    match = re.search(r"^GPU MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)", text or "", re.M)
    if not match:
        return None
    low, high, cur = (int(v) for v in match.groups())
    return low == high == cur


def parse_cuda_version(text: str) -> Optional[str]:
    """CUDA's ``version.json`` or ``version.txt`` (``CUDA Version 11.4.315``) -> ``"11.4.315"``."""
    text = text or ""
    try:
        data = json.loads(text)
        return str(data["cuda"]["version"])
    except (ValueError, KeyError, TypeError):
        pass
    match = re.search(r"CUDA Version\s+(\d+(?:\.\d+)+)", text)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------------- readers
def gpu_devfreq(root: str = "/") -> Optional[str]:
    """The GPU's devfreq folder (``.../17000000.gv11b`` on Xavier, ``.../17000000.ga10b`` on Orin)."""
    for pattern in ("sys/class/devfreq/*.gv11b", "sys/class/devfreq/*.ga10b", "sys/class/devfreq/*.gpu",
                    "sys/class/devfreq/*gp10b", "sys/class/devfreq/*gm20b"):
        found = sorted(glob.glob(os.path.join(root, pattern)))
        if found:
            return found[0]
    return None


def jetson_clocks_state(root: str = "/") -> Optional[bool]:
    """True when the GPU clock is pinned at its maximum (what ``jetson_clocks`` does), None if unknown."""
    folder = gpu_devfreq(root)
    if folder is None:
        return None
    values = []
    for name in ("min_freq", "max_freq", "cur_freq"):
        text = _read("/", os.path.join(folder, name))
        if text is None or not text.isdigit():
            return None
        values.append(int(text))
    low, high, cur = values
    return low == high == cur


def dla_cores(root: str = "/", soc: Optional[str] = None) -> int:
    """Number of DLA cores: from sysfs (``*.nvdla0``, ``*.nvdla1``), else from the SoC table (an estimate:
    Orin Nano has none; ``jetseg build --dla`` asks TensorRT, which knows)."""
    found = set()
    for pattern in ("sys/devices/platform/host1x/*nvdla*", "sys/devices/platform/*.host1x/*nvdla*",
                    "sys/devices/platform/*/*.host1x/*nvdla*", "sys/devices/platform/*nvdla*"):
        for path in glob.glob(os.path.join(root, pattern)):
            match = re.search(r"nvdla(\d+)$", path)
            if match:
                found.add(match.group(1))
    if found:
        return len(found)
    return SOCS.get(soc or "", ("", "", 0))[2]


def run_tool(args: List[str], timeout: float = 5.0) -> Optional[str]:
    """Run a device tool and return its output, or None if it is missing or fails (never raises)."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace")


def nvpmodel_mode() -> Optional[Dict[str, Any]]:
    out = run_tool(["nvpmodel", "-q"])
    return parse_nvpmodel(out) if out else None


def cuda_version(root: str = "/") -> Optional[str]:
    for path in ("usr/local/cuda/version.json", "usr/local/cuda/version.txt"):
        text = _read(root, path)
        if text:
            found = parse_cuda_version(text)
            if found:
                return found
    return None


# ---------------------------------------------------------------------------------------------- summary
@dataclass
class DeviceInfo:
    """One device's description (all fields None/False/0 off a Jetson)."""

    is_jetson: bool = False
    model: Optional[str] = None
    soc: Optional[str] = None  # xavier, orin, ...
    soc_id: Optional[str] = None  # tegra194, ...
    compute_capability: Optional[str] = None
    l4t: Optional[str] = None
    jetpack: Optional[str] = None
    nvpmodel: Optional[Dict[str, Any]] = None
    jetson_clocks: Optional[bool] = None
    dla_cores: int = 0
    cuda: Optional[str] = None
    tensorrt: Optional[str] = None
    gpu_device_nodes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


GPU_NODES = ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/dev/nvgpu/igpu0")


def describe(root: str = "/", run_tools: bool = True) -> DeviceInfo:
    """Describe this device. ``run_tools=False`` skips ``nvpmodel`` (tests with a fake ``root``)."""
    from jetseg.trtcompat import installed_version

    info = DeviceInfo()
    release = _read(root, TEGRA_RELEASE)
    info.is_jetson = release is not None
    info.l4t = parse_tegra_release(release or "")
    info.jetpack = jetpack_for(info.l4t)
    model = _read(root, "proc/device-tree/model")
    info.model = model.splitlines()[0].strip() if model else None
    info.soc_id = soc_from_compatible(_read(root, "proc/device-tree/compatible") or "")
    if info.soc_id in SOCS:
        info.soc, info.compute_capability, _ = SOCS[info.soc_id]
    if info.is_jetson:
        info.dla_cores = dla_cores(root, info.soc_id)
        info.jetson_clocks = jetson_clocks_state(root)
        if run_tools:
            info.nvpmodel = nvpmodel_mode()
    info.cuda = cuda_version(root)
    info.tensorrt = installed_version()
    info.gpu_device_nodes = [p for p in GPU_NODES if os.path.exists(os.path.join(root, p.lstrip("/")))]
    return info


def identity(root: str = "/") -> Tuple[str, str]:
    """``(soc, compute_capability)`` of the GPU engines are built for: ``("xavier", "72")`` on AGX Xavier.

    On a Jetson it comes from the device tree; elsewhere from the CUDA device (libcudart). Raises a DeviceError
    when there is no GPU at all.
    """
    from jetseg.errors import DeviceError
    from jetseg.jetson.trt.key import slug

    soc_id = soc_from_compatible(_read(root, "proc/device-tree/compatible") or "")
    if soc_id in SOCS:
        name, cc, _ = SOCS[soc_id]
        return name, cc
    from jetseg.jetson.trt.cuda import CudaContext
    from jetseg.jetson.trt.cudart import find_library

    if find_library() is None:
        raise DeviceError("no NVIDIA GPU found here (not a Jetson, and no CUDA runtime library libcudart to ask CUDA); "
                          "TensorRT engines are built and run on the device")
    try:
        ctx = CudaContext(0)
        major, minor = ctx.compute_capability
        name = ctx.name
    except DeviceError as exc:
        raise DeviceError("no NVIDIA GPU found here (not a Jetson, and %s); TensorRT engines are built and run on the "
                          "device" % exc) from None
    return slug(name), "%d%d" % (major, minor)


def module_name(root: str = "/") -> str:
    """Which module (not only which SoC) engines are built on, as a key part: AGX Xavier and Xavier NX are both
    sm_72 Xavier SoCs with different SM counts (8 and 6), so an engine tuned on one must not be reused on the
    other. On a Jetson the device tree's model (``jetson-agx-xavier-developer-kit``); elsewhere the CUDA
    device's name and SM count via libcudart (``nvidia-a10-72sm``); ``unknown`` when neither can be read."""
    from jetseg.jetson.trt.key import slug

    model = _read(root, "proc/device-tree/model")
    if model and model.strip():
        return slug(model.replace("\x00", " ").splitlines()[0])
    from jetseg.errors import DeviceError
    from jetseg.jetson.trt.cuda import CudaContext
    from jetseg.jetson.trt.cudart import find_library

    if find_library() is not None:
        try:
            ctx = CudaContext(0)
        except DeviceError:
            return "unknown"
        count = ctx.multiprocessors
        return slug(ctx.name) + ("-%dsm" % count if count else "")
    return "unknown"
