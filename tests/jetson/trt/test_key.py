"""Device keys and staleness (pure Python)."""
from __future__ import annotations

import re

import pytest

from jetseg.errors import JetsegError
from jetseg.jetson.trt.key import EngineKey, normalise_cc, slug, stale_reasons

MODEL = "a" * 64
CALIB = "b" * 64


def key(**kw):
    base = dict(soc="xavier", compute_capability="72", trt_version="8.5.2", precision="int8", dla_core=0,
                model_sha256=MODEL, calibration_sha256=CALIB)
    base.update(kw)
    return EngineKey(**base)


def test_name_is_readable_and_filesystem_safe():
    k = key()
    assert re.fullmatch(r"xavier-sm72-trt8\.5\.2-int8-dla0-[0-9a-f]{8}", k.name)
    assert key(dla_core=None, precision="fp16", calibration_sha256=None).name.startswith("xavier-sm72-trt8.5.2-fp16-gpu-")
    odd = key(soc="NVIDIA GeForce RTX 3060 / Ti", compute_capability=(8, 6), trt_version="10.3.0")
    assert odd.name.startswith("nvidia-geforce-rtx-3060-ti-sm86-trt10.3.0-")
    assert re.fullmatch(r"[a-z0-9.\-]+", odd.name)


def test_hash_covers_model_and_calibration():
    assert key().content_hash != key(model_sha256="c" * 64).content_hash
    assert key().content_hash != key(calibration_sha256="d" * 64).content_hash
    assert key().content_hash == key().content_hash


def test_compute_capability_forms():
    assert normalise_cc("7.2") == normalise_cc((7, 2)) == normalise_cc("sm72") == normalise_cc(72) == "72"
    with pytest.raises(JetsegError, match="compute capability 'volta' is not understood"):
        normalise_cc("volta")


def test_invalid_keys_are_user_errors():
    with pytest.raises(JetsegError, match="the DLA runs FP16 and INT8 only; got --precision fp32 with --dla 1"):
        key(precision="fp32", dla_core=1)
    with pytest.raises(JetsegError, match="precision 'int4' is unknown"):
        key(precision="int4")
    with pytest.raises(JetsegError, match="DLA core -1 is invalid"):
        key(dla_core=-1)


def test_up_to_date_has_no_reasons_and_roundtrips():
    k = key()
    assert stale_reasons(k.to_dict(), k) == []
    assert EngineKey.from_dict(k.to_dict()) == k


def test_every_field_is_a_reason():
    recorded = key().to_dict()
    assert stale_reasons(recorded, key(soc="orin", compute_capability="87")) == [
        "SoC/GPU: engine xavier, here orin", "compute capability: engine sm72, here sm87"]
    assert stale_reasons(recorded, key(trt_version="8.6.1")) == ["TensorRT version: engine 8.5.2, here 8.6.1"]
    assert stale_reasons(recorded, key(precision="fp16")) == ["precision: engine int8, here fp16"]
    assert stale_reasons(recorded, key(dla_core=None)) == ["DLA core: engine 0, here GPU"]
    assert stale_reasons(recorded, key(model_sha256="c" * 64)) == ["model: engine aaaaaaaaaaaa.., here cccccccccccc.."]
    assert stale_reasons(recorded, key(calibration_sha256=None)) == ["calibration cache: engine bbbbbbbbbbbb.., here none"]


def test_slug():
    assert slug("Jetson AGX Xavier") == "jetson-agx-xavier"
    assert slug("///") == "unknown"


def test_module_route_and_flags_separate_engines():
    """AGX Xavier and Xavier NX are both sm72 Xavier; the build route and flags change the engine too."""
    from jetseg.jetson.trt.key import EngineKey, stale_reasons

    base = dict(soc="xavier", compute_capability="72", trt_version="8.5.2", precision="int8", dla_core=0,
                model_sha256="a" * 64, calibration_sha256="b" * 64)
    agx = EngineKey(module="jetson-agx-xavier-developer-kit", via="onnx", flags="fp16+int8:cache+gpu_fallback",
                    **base)
    nx = EngineKey(module="nvidia-jetson-xavier-nx-developer-kit", via="onnx",
                   flags="fp16+int8:cache+gpu_fallback", **base)
    t2t = EngineKey(module=agx.module, via="torch2trt", flags=agx.flags, **base)
    assert len({agx.name, nx.name, t2t.name}) == 3
    assert stale_reasons(agx.to_dict(), nx) == ["module: engine jetson-agx-xavier-developer-kit, here "
                                                 "nvidia-jetson-xavier-nx-developer-kit"]
    assert stale_reasons(agx.to_dict(), t2t) == ["build route (--via): engine onnx, here torch2trt"]
    old_record = {k: v for k, v in agx.to_dict().items() if k not in ("module", "via", "flags")}
    assert "module: engine none, here jetson-agx-xavier-developer-kit" in stale_reasons(old_record, agx)
    assert EngineKey.from_dict(agx.to_dict()) == agx


def test_build_flags_of_a_plan():
    from jetseg.jetson.trt.plan import BuildPlan, build_flags

    assert build_flags(BuildPlan("fp32", None, "none", False, None)) == "none"
    assert build_flags(BuildPlan("fp16", 0, "none", False, None)) == "fp16+gpu_fallback"
    assert build_flags(BuildPlan("int8", None, "qdq", False, None)) == "fp16+int8:qdq"


def test_module_name_from_the_device_tree(tmp_path):
    from jetseg.jetson.device.info import module_name

    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "model").write_text("NVIDIA Jetson Xavier NX Developer Kit\x00")
    assert module_name(str(tmp_path)) == "nvidia-jetson-xavier-nx-developer-kit"
