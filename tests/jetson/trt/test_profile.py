"""Batch profiles (jetson/trt/profile.py), the batch in the engine key and in build.json: pure Python."""
from __future__ import annotations

import json

import pytest

from jetseg.errors import JetsegError
from jetseg.jetson.trt.key import EngineKey, stale_reasons
from jetseg.jetson.trt.profile import DLA_MAX_BATCH, batch_profile, chunks, run_size
from jetseg.records import BuildRecord


def test_gpu_profile_is_one_to_n_with_opt_n():
    p = batch_profile("input", ["N", 1, 32, 32], 4)
    assert p.shapes == ((1, 1, 32, 32), (4, 1, 32, 32), (4, 1, 32, 32)) and p.calibration is None
    assert p.to_dict() == {"input": "input", "batch": 4, "min": [1, 1, 32, 32], "opt": [4, 1, 32, 32],
                           "max": [4, 1, 32, 32]}


def test_dla_profile_is_fixed_and_says_why():
    p = batch_profile("input", ["N", 1, 32, 32], 2, dla=True)
    assert p.shapes == ((2, 1, 32, 32),) * 3
    assert "no runtime dimensions" in p.to_dict()["dla"]
    with pytest.raises(JetsegError, match="the DLA runs batches of at most %d" % DLA_MAX_BATCH):
        batch_profile("input", ["N", 1, 32, 32], DLA_MAX_BATCH + 1, dla=True)


def test_calibration_profile_is_the_calibrators_batch():
    p = batch_profile("input", ["N", 1, 32, 32], 8, calibrating=True, calibration_batch=1)
    assert p.calibration == (1, 1, 32, 32) and p.to_dict()["calibration"] == [1, 1, 32, 32]
    dla = batch_profile("input", ["N", 1, 32, 32], 4, dla=True, calibrating=True, calibration_batch=1)
    assert dla.shapes == ((4, 1, 32, 32),) * 3 and dla.calibration == (1, 1, 32, 32)  # its own profile


def test_fixed_batch_needs_no_profile_and_another_batch_is_refused_with_the_fix():
    p = batch_profile("input", [4, 1, 32, 32], 4)
    assert p.shapes is None and p.static == (4, 1, 32, 32) and p.to_dict()["shape"] == [4, 1, 32, 32]
    with pytest.raises(JetsegError) as err:
        batch_profile("input", [1, 1, 32, 32], 4)
    line = str(err.value)
    assert "\n" not in line
    assert "--batch 4: input has a fixed batch of 1; build with --batch 1, or re-export" in line
    assert line.endswith("re-export the model with 'jetseg export --batch dynamic' (or --batch 4)")
    with pytest.raises(JetsegError, match="only the batch axis may be dynamic"):
        batch_profile("input", ["N", 1, "H", 32], 2)
    with pytest.raises(JetsegError, match="--batch 0: expected an integer >= 1"):
        batch_profile("input", ["N", 1, 32, 32], 0)


def test_run_size_pads_to_the_fixed_batch_and_chunks_split():
    assert run_size(3, 1, 4) == 3 and run_size(1, 2, 2) == 2
    with pytest.raises(JetsegError):
        run_size(5, 1, 4)
    assert chunks(6, 4) == [(0, 4), (4, 6)] and chunks(1, 1) == [(0, 1)]


def _key(**kw):
    base = dict(soc="xavier", compute_capability="72", trt_version="8.5.2", precision="fp16", dla_core=None,
                model_sha256="a" * 64)
    base.update(kw)
    return EngineKey(**base)


def test_batch_is_in_the_key_and_old_keys_are_batch_one():
    one, four = _key(), _key(batch=4)
    assert one.name != four.name  # an engine for batch 1 is never found for batch 4
    assert stale_reasons(one.to_dict(), four) == ["batch (--batch): engine 1, here 4"]
    old = {k: v for k, v in one.to_dict().items() if k != "batch"}  # build.json written before batches
    assert stale_reasons(old, one) == [] and EngineKey.from_dict(old).batch == 1
    assert EngineKey.from_dict(four.to_dict()) == four
    with pytest.raises(JetsegError, match="batch 0 is invalid"):
        _key(batch=0)


def test_build_record_without_batch_reads_as_batch_one(tmp_path):
    (tmp_path / "build.json").write_text(json.dumps({"key": _key().to_dict()}))
    record = BuildRecord.read(tmp_path)
    assert record.batch == 1 and record.profile == {}
    (tmp_path / "build.json").write_text(json.dumps({"key": {}, "batch": "4"}))
    with pytest.raises(JetsegError, match="field 'batch' is a string; expected an integer"):
        BuildRecord.read(tmp_path)
