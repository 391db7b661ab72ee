"""``--backend auto`` and the default threads of CPU runners (no runtime needed: availability is patched)."""
from __future__ import annotations

import pytest

import jetseg.jetson.runners as runners
from jetseg.errors import RunnerError


def _machine(monkeypatch, jetson: bool, arch: str, modules) -> None:
    monkeypatch.setattr(runners.os.path, "exists",
                        lambda p, _real=runners.os.path.exists: jetson if p == runners.TEGRA_RELEASE else _real(p))
    monkeypatch.setattr("platform.machine", lambda: arch)
    monkeypatch.setattr("jetseg.optional.available", lambda name: name in modules)


@pytest.mark.parametrize("jetson, arch, modules, expected", [
    (False, "x86_64", {"openvino", "onnxruntime"}, "openvino"),
    (False, "x86_64", {"onnxruntime"}, "onnxrt"),
    (False, "aarch64", {"openvino", "onnxruntime"}, "onnxrt"),
    (True, "aarch64", {"onnxruntime"}, "onnxrt"),
    (True, "aarch64", {"tensorrt", "onnxruntime"}, "trt"),
])
def test_auto_picks_the_fastest_runner_here_and_says_why(monkeypatch, jetson, arch, modules, expected):
    _machine(monkeypatch, jetson, arch, modules)
    name, why = runners.choose_backend()
    assert name == expected and why
    assert runners.resolve_backend("auto") == expected and runners.resolve_backend("torch") == "torch"


def test_auto_on_a_jetson_waits_for_an_engine(monkeypatch, tiny_bundle):
    _machine(monkeypatch, True, "aarch64", {"tensorrt", "onnxruntime"})
    name, why = runners.choose_backend(tiny_bundle)
    assert name == "onnxrt" and "no TensorRT engine yet" in why and "jetseg build" in why
    (tiny_bundle.path / "engines" / "xavier-sm72-trt8.5.2-int8-1a2b3c4d").mkdir(parents=True)
    assert runners.choose_backend(tiny_bundle)[0] == "trt"


def test_default_threads_leave_a_core_to_the_pipeline(monkeypatch):
    for cores, threads in ((1, 1), (2, 1), (8, 7)):
        monkeypatch.setattr(runners, "usable_cores", lambda c=cores: c)
        assert runners.default_threads() == threads
    monkeypatch.setattr(runners, "usable_cores", lambda: 4)
    assert runners.with_default_threads("onnxrt", {}) == {"threads": 3}
    assert runners.with_default_threads("openvino", {"threads": 2}) == {"threads": 2}  # given: kept
    assert runners.with_default_threads("onnxrt", {"provider": "cuda"}) == {"provider": "cuda"}  # GPU: its own
    assert runners.with_default_threads("trt", {}) == {}


def test_auto_is_not_a_registered_runner_name():
    with pytest.raises(RunnerError, match=r"unknown backend 'auto'"):
        runners.RUNNERS.check("auto")
    assert "openvino" in runners.RUNNERS.names()
