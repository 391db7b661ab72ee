"""``--backend auto``, where runners compute (``Runner.on_cpu``) and their default threads; a Jetson is simulated
(``on_jetson``, the device identity and the TensorRT double, tests/fixtures/fake_tensorrt.py)."""
from __future__ import annotations

import argparse
import logging
import shutil

import numpy as np
import pytest

import jetseg.jetson.runners as runners
from jetseg.bundle import Bundle
from jetseg.engines.build import build_engine
from jetseg.errors import RunnerError
from jetseg.jetson.device import info
from jetseg.jetson.pipeline import runs_on_cpu
from jetseg.jetson.runners import base
from jetseg.jetson.runners.trt import TensorRTRunner
from tests.fixtures import fake_tensorrt
from tests.fixtures.bundles import conv_bundle
from tests.fixtures.models import conv_model


def _machine(monkeypatch, jetson: bool, arch: str, modules) -> None:
    monkeypatch.setattr(info, "on_jetson", lambda root="/": jetson)
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
    fake_tensorrt.install(monkeypatch, "8.5.2.2")
    _machine(monkeypatch, jetson, arch, modules)
    name, why = runners.choose_backend()
    assert name == expected and why
    assert runners.resolve_backend("auto") == expected and runners.resolve_backend("torch") == "torch"


@pytest.fixture
def xavier(monkeypatch):
    """A simulated AGX Xavier with TensorRT 8.5.2 (the double) and the CUDA runtime double."""
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))
    monkeypatch.setattr(info, "module_name", lambda root="/": "jetson-agx-xavier-developer-kit")
    trt = fake_tensorrt.install(monkeypatch, "8.5.2.2", cuda=True)
    _machine(monkeypatch, True, "aarch64", {"tensorrt", "onnxruntime", "onnx"})
    return trt


def _doctor_says(bundle) -> str:
    from jetseg.cli.doctor import auto_backend

    auto = auto_backend(str(bundle.path))
    return "%s: %s" % (auto["name"], auto["reason"])


def test_auto_on_a_jetson_runs_trt_only_with_a_usable_engine(tiny_bundle, xavier):
    name, why = runners.choose_backend(tiny_bundle)
    assert name == "onnxrt" and "has no engine for this device (xavier-sm72-trt8.5.2)" in why
    assert "build one here with 'jetseg build %s --precision fp16'" % tiny_bundle.path in why
    assert _doctor_says(tiny_bundle) == "%s: %s" % (name, why)
    key = build_engine(tiny_bundle, "fp16").key
    name, why = runners.choose_backend(tiny_bundle)
    assert name == "trt" and key.name in why
    runner = runners.open_runner("auto", str(tiny_bundle.path))
    assert isinstance(runner, TensorRTRunner)
    with runner:
        assert runner.key == key


def test_auto_on_a_jetson_falls_back_from_a_stale_engine_and_says_rebuild(tmp_path, tiny_bundle, xavier):
    old = build_engine(tiny_bundle, "fp16").key
    retrained = conv_bundle(tmp_path / "retrained", model=conv_model(seed=1))  # same spec, new weights
    shutil.copytree(str(tiny_bundle.path / "engines"), str(retrained.path / "engines"))
    name, why = runners.choose_backend(retrained)
    assert name == "onnxrt" and why.endswith(": ONNX Runtime until then")
    assert "(stale: %s: model: engine %s.., here %s..)" % (old.name, old.model_sha256[:12],
                                                          retrained.model_sha256[:12]) in why
    assert "rebuild it here with 'jetseg build %s --precision fp16'" % retrained.path in why
    assert _doctor_says(retrained) == "%s: %s" % (name, why)
    with pytest.raises(RunnerError) as err:  # the trt runner refuses it with the same words
        runners.open_runner("trt", retrained).activate()
    assert str(err.value) in why


@pytest.mark.parametrize("built_on", ["orin", "trt10"])
def test_auto_on_a_jetson_falls_back_from_an_engine_of_another_device(monkeypatch, tiny_bundle, xavier, built_on):
    if built_on == "orin":
        monkeypatch.setattr(info, "identity", lambda root="/": ("orin", "87"))
        foreign = build_engine(tiny_bundle, "fp16").key
        monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))
    else:
        fake_tensorrt.install(monkeypatch, "10.3.0", cuda=True)
        foreign = build_engine(tiny_bundle, "fp16").key
        fake_tensorrt.install(monkeypatch, "8.5.2.2", cuda=True)
    name, why = runners.choose_backend(tiny_bundle)
    assert name == "onnxrt"
    assert ("has no engine for this device (xavier-sm72-trt8.5.2), only engines built for another device, "
            "TensorRT version or target (%s)" % foreign.name) in why
    assert "build one here with 'jetseg build" in why
    assert _doctor_says(tiny_bundle) == "%s: %s" % (name, why)


def test_auto_builds_the_bundle_once(monkeypatch, tiny_bundle, xavier):
    loads = []
    real = Bundle.check_model
    monkeypatch.setattr(Bundle, "check_model", lambda self: loads.append(1) or real(self))
    build_engine(tiny_bundle, "fp16")
    loads.clear()
    assert runners.open_runner("auto", str(tiny_bundle.path)).name == "trt" and len(loads) == 1


def test_doctor_explains_the_bundle_jetseg_run_would_run(monkeypatch, capsys, tiny_bundle, xavier):
    from jetseg.cli import doctor

    monkeypatch.setattr(doctor, "package_versions", lambda: {name: "1.0" for name in doctor.PACKAGES})
    monkeypatch.setattr("jetseg.jetson.device.telemetry.sample_once", lambda timeout=3.0: None)
    assert doctor.run(argparse.Namespace(json=False, model=str(tiny_bundle.path))) == 0
    out = capsys.readouterr().out
    assert "--backend auto for %s: onnxrt (%s)" % (tiny_bundle.path, runners.choose_backend(tiny_bundle)[1]) in out


# ---------------------------------------------------------------------------------------------- threads
def test_default_threads_leave_a_core_to_the_pipeline(monkeypatch):
    for cores, threads in ((1, 1), (2, 1), (8, 7)):
        monkeypatch.setattr(base, "usable_cores", lambda c=cores: c)
        assert runners.default_threads() == threads


@pytest.mark.parametrize("backend, options, on_cpu", [
    ("onnxrt", {}, True),
    ("onnxrt", {"provider": "cpu"}, True),
    ("onnxrt", {"provider": "cuda"}, False),
    ("onnxrt", {"provider": "tensorrt"}, False),
    ("openvino", {}, True),
    ("openvino", {"device": "CPU"}, True),
    ("openvino", {"device": "GPU"}, False),
    ("trt", {}, False),
])
def test_one_rule_for_where_a_runner_computes_and_its_default_threads(monkeypatch, tiny_bundle, backend, options,
                                                                      on_cpu):
    monkeypatch.setattr(base, "usable_cores", lambda: 4)
    runner = runners.open_runner(backend, tiny_bundle, **options)
    assert runner.on_cpu is on_cpu and runs_on_cpu(runner) is on_cpu  # the pipeline asks the runner
    assert runner.threads == (3 if on_cpu else 0)  # 0: the runtime's own choice on a GPU
    # every runner accepts threads; only one on the CPU applies them
    assert runners.open_runner(backend, tiny_bundle, threads=2, **options).threads == (2 if on_cpu else 0)
    if backend == "trt":
        return
    assert runner.describe()["threads"] == (3 if on_cpu else "default")
    if backend == "openvino":
        assert ("INFERENCE_NUM_THREADS" in runner.config()) is on_cpu


def test_the_runner_not_a_name_list_decides_who_gets_threads(monkeypatch, tiny_bundle, caplog):
    assert not hasattr(runners, "CPU_RUNNERS")
    from jetseg.jetson.runners.onnxrt import OnnxRuntimeRunner

    monkeypatch.setattr(OnnxRuntimeRunner, "on_cpu", property(lambda self: False))
    with caplog.at_level(logging.INFO, logger="jetseg.runners"):
        runner = runners.open_runner("onnxrt", tiny_bundle, threads=2)  # provider cpu, yet the runner says GPU
    assert runner.threads == 0 and "threads=2 not applied" in caplog.text
    monkeypatch.setattr(OnnxRuntimeRunner, "on_cpu", property(lambda self: True))
    assert runners.open_runner("onnxrt", tiny_bundle, threads=2, provider="cuda").threads == 2


def test_torch_runs_on_the_cpu_with_the_default_threads_and_gives_them_back(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    from tests.fixtures.bundles import torch_unet_bundle

    monkeypatch.setattr(base, "usable_cores", lambda: 3)
    bundle = torch_unet_bundle(tmp_path / "t")
    before = torch.get_num_threads()
    runner = runners.open_runner("torch", bundle)
    assert runner.on_cpu and runs_on_cpu(runner) and runner.threads == 2
    with runner, runners.open_runner("torch", bundle, threads=1) as other:
        assert torch.get_num_threads() == 1  # the last activated runner set the process-wide setting
        runner.infer(bundle.spec.preprocess(_frame()))
        assert torch.get_num_threads() == 2 and runner.describe()["threads"] == 2  # each runner runs with its own
        other.infer(bundle.spec.preprocess(_frame()))
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def _frame():
    return np.zeros((32, 32), np.uint8)


def test_auto_is_not_a_registered_runner_name():
    with pytest.raises(RunnerError, match=r"unknown backend 'auto'"):
        runners.RUNNERS.check("auto")
    assert "openvino" in runners.RUNNERS.names()


def test_options_for_another_backend_than_auto_chose_say_what_auto_chose(monkeypatch, tiny_bundle):
    monkeypatch.setattr(runners, "choose_backend", lambda bundle=None: ("onnxrt", "a test machine"))
    with pytest.raises(RunnerError) as info_:
        runners.open_runner("auto", tiny_bundle, device="CPU")  # an OpenVINO option
    assert str(info_.value).startswith("unknown onnxrt backend option 'device'")
    assert str(info_.value).endswith("(--backend auto chose onnxrt here: a test machine; name the backend the "
                                     "options are for)")
    with pytest.raises(RunnerError, match=r"^unknown onnxrt backend option 'device'[^(]*$"):
        runners.open_runner("onnxrt", tiny_bundle, device="CPU")  # named: the plain message
