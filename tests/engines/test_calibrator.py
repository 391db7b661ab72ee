"""The on-device calibrator's plain-Python parts and its TensorRT adapter, against a stand-in tensorrt module."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.engines.calibrator import BatchFeeder, CacheStore, make_trt_calibrator
from jetseg.errors import DeviceError, JetsegError
from jetseg.jetson.trt import cache
from tests.fixtures import fake_tensorrt


def _frames(n, shape=(1, 1, 4, 6)):
    return [np.full(shape, float(i), dtype=np.float32) for i in range(n)]


def test_full_batches_are_nchw_float32_contiguous():
    feeder = BatchFeeder(_frames(7), batch_size=3)
    assert len(feeder) == 2 and feeder.shape == (3, 1, 4, 6)
    first = feeder.next_batch()
    assert first.shape == (3, 1, 4, 6) and first.dtype == np.float32 and first.flags["C_CONTIGUOUS"]
    assert [float(first[i, 0, 0, 0]) for i in range(3)] == [0.0, 1.0, 2.0]
    second = feeder.next_batch()
    assert float(second[0, 0, 0, 0]) == 3.0
    assert feeder.next_batch() is None  # one frame left: dropped, never a short batch
    assert (feeder.batches_served, feeder.frames_served, feeder.frames_dropped) == (2, 6, 1)
    assert feeder.next_batch() is None
    feeder.reset()
    assert feeder.next_batch() is not None and feeder.frames_served == 3


def test_partial_batch_padding_repeats_the_last_frame():
    feeder = BatchFeeder(_frames(5, shape=(1, 4, 6)), batch_size=2, partial="pad")
    batches = []
    while True:
        batch = feeder.next_batch()
        if batch is None:
            break
        batches.append(batch)
    assert len(batches) == len(feeder) == 3
    assert [float(v) for v in batches[-1][:, 0, 0, 0]] == [4.0, 4.0]
    assert (feeder.frames_served, feeder.frames_dropped) == (5, 0)


def test_feeder_errors():
    with pytest.raises(JetsegError, match="calibration batch size 0 is invalid; expected a positive integer"):
        BatchFeeder(_frames(2), batch_size=0)
    with pytest.raises(JetsegError, match="partial-batch mode 'keep' is unknown; expected drop or pad"):
        BatchFeeder(_frames(2), partial="keep")
    with pytest.raises(JetsegError, match=r"calibration frame of shape \(1, 4, 5\); expected"):
        BatchFeeder(_frames(1) + [np.zeros((1, 1, 4, 5), np.float32)])
    with pytest.raises(JetsegError, match="no calibration frames"):
        BatchFeeder([])


def _fake_trt(version="8.5.2.2"):
    return fake_tensorrt.make(version)


def test_adapter_serves_device_pointers_and_the_cache(tmp_path):
    copied = []

    def to_device(batch):
        copied.append(batch.copy())
        return 0x1000 + len(copied)

    trt = _fake_trt()
    store = CacheStore(tmp_path / "calibration.cache", "8.5.2", "entropy")
    calib = make_trt_calibrator(BatchFeeder(_frames(5), batch_size=2), store, to_device=to_device, trt=trt)
    assert isinstance(calib, trt.IInt8EntropyCalibrator2) and calib.base_initialised
    assert calib.get_batch_size() == 2
    assert calib.read_calibration_cache() is None
    assert calib.get_batch(["input"]) == [0x1001]
    assert calib.get_batch(["input"]) == [0x1002]
    assert calib.get_batch(["input"]) is None
    assert len(copied) == 2 and copied[1].shape == (2, 1, 4, 6)
    data = cache.dumps({"input": 0.5}, "8.5.2", "entropy")
    calib.write_calibration_cache(memoryview(data))
    assert calib.read_calibration_cache() == data
    minmax = make_trt_calibrator(None, CacheStore(tmp_path / "m.cache", "8.5.2", "minmax"), trt=trt)
    assert isinstance(minmax, trt.IInt8MinMaxCalibrator) and minmax.get_batch(["input"]) is None


def test_adapter_errors(tmp_path):
    store = CacheStore(tmp_path / "c.cache", "11.0.0")
    with pytest.raises(DeviceError, match="TensorRT 11.0.0 has no IInt8EntropyCalibrator2 .*use the INT8 bundle's "
                                          "Q/DQ model.onnx instead"):
        make_trt_calibrator(None, store, trt=_fake_trt("11.0.0"))
    with pytest.raises(DeviceError, match="needs a to_device function"):
        make_trt_calibrator(BatchFeeder(_frames(1)), store, trt=_fake_trt())


def test_store_ignores_a_stale_cache(tmp_path, caplog):
    path = tmp_path / "c.cache"
    store = CacheStore(path, "8.5.2", "entropy")
    assert store.read() is None  # no file yet
    store.write(cache.dumps({"input": 0.01}, "8.6.1", "entropy"))
    assert store.read() is None
    assert "written as TRT-8601-EntropyCalibration2, this is TRT-8502-EntropyCalibration2" in caplog.text
    store.write(cache.dumps({"input": 0.01}, "8.5.2", "minmax"))
    assert store.read() is None  # other algorithm
    good = cache.dumps({"input": 0.01}, "8.5.2", "entropy")
    store.write(good)
    assert store.read() == good
    assert [p.name for p in tmp_path.iterdir()] == ["c.cache"]  # atomic write left no temp file
