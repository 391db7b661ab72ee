"""Device information from JetPack's files and tools, on sample output and a fake file tree."""
from __future__ import annotations

import json

import pytest

from jetseg.errors import DeviceError
from jetseg.jetson.device import info

XAVIER_RELEASE = "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, DATE: Sun Mar 19 15:19:21 UTC 2023\n"
ORIN_RELEASE = "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024\n"

NVPMODEL_XAVIER = """NVPM WARN: fan mode is not set!
NV Fan Mode:quiet
NV Power Mode: MODE_15W
2
"""
NVPMODEL_MAXN = "NV Power Mode: MAXN\n0\n"

CLOCKS_PINNED = """SOC family:tegra194  Machine:Jetson-AGX
Online CPUs: 0-7
cpu0: Online=1 Governor=schedutil MinFreq=2265600 MaxFreq=2265600 CurrentFreq=2265600 IdleStates: C1=0 c6=0
GPU MinFreq=1377000000 MaxFreq=1377000000 CurrentFreq=1377000000
EMC MinFreq=204000000 MaxFreq=2133000000 CurrentFreq=2133000000 FreqOverride=1
NV Power Mode: MAXN
"""


def test_tegra_release_and_jetpack():
    assert info.parse_tegra_release(XAVIER_RELEASE) == "35.3.1"
    assert info.jetpack_for("35.3.1") == "5.1.1"
    assert info.parse_tegra_release(ORIN_RELEASE) == "36.3.0"
    assert info.jetpack_for("36.3.0") == "6.0"
    assert info.jetpack_for("99.0.0") is None
    assert info.parse_tegra_release("garbage") is None


def test_nvpmodel_output():
    assert info.parse_nvpmodel(NVPMODEL_XAVIER) == {"id": 2, "name": "MODE_15W"}
    assert info.parse_nvpmodel(NVPMODEL_MAXN) == {"id": 0, "name": "MAXN"}
    assert info.parse_nvpmodel("nvpmodel: command not found") is None


def test_jetson_clocks_show():
    assert info.parse_jetson_clocks(CLOCKS_PINNED) is True
    assert info.parse_jetson_clocks(CLOCKS_PINNED.replace("GPU MinFreq=1377000000", "GPU MinFreq=114750000")) is False
    assert info.parse_jetson_clocks("") is None


def test_cuda_version_files():
    assert info.parse_cuda_version(json.dumps({"cuda": {"name": "CUDA SDK", "version": "11.4.315"}})) == "11.4.315"
    assert info.parse_cuda_version("CUDA Version 10.2.300\n") == "10.2.300"
    assert info.parse_cuda_version("") is None


def _write(root, path, text):
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


@pytest.fixture
def fake_xavier(tmp_path):
    root = tmp_path / "root"
    _write(root, "etc/nv_tegra_release", XAVIER_RELEASE)
    _write(root, "proc/device-tree/model", "Jetson-AGX\x00")
    _write(root, "proc/device-tree/compatible", "nvidia,p2972-0000\x00nvidia,galen\x00nvidia,tegra194\x00")
    for core in ("15880000.nvdla0", "158c0000.nvdla1"):
        (root / "sys/devices/platform/host1x" / core).mkdir(parents=True)
    gpu = root / "sys/class/devfreq/17000000.gv11b"
    for name, value in (("min_freq", "1377000000"), ("max_freq", "1377000000"), ("cur_freq", "1377000000")):
        _write(gpu, name, value + "\n")
    _write(root, "usr/local/cuda/version.json", json.dumps({"cuda": {"version": "11.4.315"}}))
    return root


def test_describe_a_fake_xavier(fake_xavier):
    d = info.describe(str(fake_xavier), run_tools=False)
    assert d.is_jetson and d.model == "Jetson-AGX"
    assert (d.soc, d.soc_id, d.compute_capability) == ("xavier", "tegra194", "72")
    assert (d.l4t, d.jetpack, d.cuda) == ("35.3.1", "5.1.1", "11.4.315")
    assert d.dla_cores == 2 and d.jetson_clocks is True
    assert info.identity(str(fake_xavier)) == ("xavier", "72")
    (fake_xavier / "sys/class/devfreq/17000000.gv11b/min_freq").write_text("114750000\n")
    assert info.jetson_clocks_state(str(fake_xavier)) is False


def test_this_machine_is_not_a_jetson(tmp_path):
    d = info.describe(str(tmp_path), run_tools=False)
    assert not d.is_jetson and d.soc is None and d.dla_cores == 0 and d.l4t is None
    with pytest.raises(DeviceError, match="no NVIDIA GPU found here"):
        info.identity(str(tmp_path))
