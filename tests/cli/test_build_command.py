"""`jetseg build` and `jetseg doctor` as a user runs them on this machine (no GPU, no TensorRT)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jetseg.optional import available
from tests.fixtures.hardware import ON_JETSON
from tests.fixtures.paths import REPO


def jetseg(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "jetseg", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def _one_line_error(done, *fragments):
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.mark.skipif(available("tensorrt"), reason="TensorRT is installed here")
@pytest.mark.parametrize("args", [["--precision", "int8"], ["--precision", "fp16", "--dla", "0"], []])
def test_build_without_tensorrt_is_one_line(tiny_bundle, args):
    line = _one_line_error(jetseg("build", tiny_bundle.path, *args),
                           "jetseg build: error: TensorRT is not installed on this machine")
    assert "onnxrt" in line
    assert not (tiny_bundle.path / "engines").exists()


@pytest.mark.skipif(available("tensorrt"), reason="TensorRT is installed here")
def test_build_bundled_models_without_tensorrt(tmp_path):
    bundles = sorted(p for p in (REPO / "models" / "bundles").glob("*") if (p / "spec.yaml").is_file())
    assert bundles, "no bundled models found under %s" % (REPO / "models" / "bundles")
    for bundle in bundles:
        _one_line_error(jetseg("build", bundle, "--precision", "int8"), "TensorRT is not installed")
        assert not (bundle / "engines").exists()


def test_build_user_mistakes_are_one_line(tmp_path, tiny_bundle):
    _one_line_error(jetseg("build", tmp_path / "missing"), "is not a model bundle directory")
    done = jetseg("build", tiny_bundle.path, "--precision", "int4")
    assert done.returncode == 2 and "invalid choice: 'int4'" in done.stderr


@pytest.mark.skipif(ON_JETSON, reason="describes a machine that is not a Jetson")
def test_doctor_describes_this_machine():
    done = jetseg("doctor")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "device:" in out and "backends:" in out and "OpenCV GStreamer:" in out
    trt_row = next(line for line in out.splitlines() if line.strip().startswith("trt "))
    assert "no   needs tensorrt" in trt_row and trt_row.endswith("an NVIDIA GPU"), trt_row
    assert "missing, and how to get it:" in out
    assert "'jetseg build' and the trt backend run on the device" in out
    info = json.loads(jetseg("doctor", "--json").stdout)
    assert info["device"]["is_jetson"] is False and info["device"]["tensorrt"] is None
    assert info["packages"]["tensorrt"] == "not installed"
    assert {b["name"]: b["usable"] for b in info["backends"]}["trt"] is False
    assert any("GStreamer" in line for line in info["missing"]) == (not info["opencv_gstreamer"].startswith("YES"))
    # what --backend auto runs here for the bundle 'jetseg run' runs, and why; CPU backends leave a core
    from jetseg.jetson.daemon.assembly import default_bundle
    from jetseg.jetson.runners import choose_backend, default_threads

    auto = info["auto_backend"]
    assert (auto["name"], auto["reason"]) == choose_backend(default_bundle()) and auto["cpu_threads"] == default_threads()
    assert "--backend auto for %s: %s (%s)" % ((auto["bundle"],) + choose_backend(default_bundle())) in out
    assert info["packages"]["openvino"] != "not installed" or auto["name"] != "openvino"


def test_doctor_on_a_jetson_says_what_is_missing(monkeypatch, capsys):
    import argparse

    from jetseg.cli import doctor
    from jetseg.jetson.device import info, telemetry

    fake = info.DeviceInfo(is_jetson=True, model="Jetson-AGX", soc="xavier", soc_id="tegra194",
                           compute_capability="72", l4t="35.3.1", jetpack="5.1.1",
                           nvpmodel={"id": 2, "name": "MODE_15W"}, jetson_clocks=False, dla_cores=2,
                           cuda="11.4.315", tensorrt=None)
    monkeypatch.setattr(info, "describe", lambda root="/", run_tools=True: fake)
    monkeypatch.setattr(telemetry, "sample_once", lambda timeout=3.0: {"power_total_mw": 9100})
    versions = {name: "1.0" for name in doctor.PACKAGES}
    versions.update(tensorrt="not installed", libcudart="not installed")
    monkeypatch.setattr(doctor, "package_versions", lambda: dict(versions))
    assert doctor.run(argparse.Namespace(json=False, model=None)) == 0
    out = capsys.readouterr().out
    assert "SoC              xavier (tegra194, sm72)" in out
    assert "L4T / JetPack    35.3.1 / 5.1.1" in out
    assert "power mode       MODE_15W (mode 2)" in out and "jetson_clocks    no" in out
    assert "DLA cores        2" in out and "now              9.1 W" in out
    assert "tensorrt: TensorRT comes with JetPack (python3-libnvinfer)" in out
    assert "clocks are not pinned: run 'sudo jetson_clocks' before benchmarking" in out
    assert "libcudart: the CUDA runtime comes with JetPack (sudo apt-get install nvidia-jetpack)" in out
    assert "trt      no   needs tensorrt, libcudart" in out
