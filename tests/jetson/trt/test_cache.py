"""TensorRT calibration cache: version numbers, exact hex, writer/reader round trip, stale caches."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from jetseg.jetson.trt import cache


def test_version_numbers():
    assert cache.version_number("8.5.2") == 8502
    assert cache.version_number("8.6.1.6") == 8601
    assert cache.version_number("10.3.0") == 100300
    assert cache.version_number("8.5") == 8500
    with pytest.raises(cache.CacheError, match="TensorRT version 'eight' is not a version; expected major.minor.patch"):
        cache.version_number("eight")


def test_scale_hex_is_big_endian_float32_bits():
    assert cache.scale_to_hex(1.0) == "3f800000"
    assert cache.scale_to_hex(2.0) == "40000000"
    assert cache.scale_to_hex(1.0 / 127.0) == "3c010204"
    assert cache.hex_to_scale("3c010204") == struct.unpack(">f", bytes.fromhex("3c010204"))[0]
    assert cache.hex_to_scale("0") == 0.0  # TensorRT does not zero-pad
    assert cache.hex_to_scale("3c01") == struct.unpack(">f", bytes.fromhex("00003c01"))[0]
    with pytest.raises(cache.CacheError, match=r"'3c01020405' is not a hex float32 bit pattern \(1 to 8 hex digits\)"):
        cache.hex_to_scale("3c01020405")
    with pytest.raises(cache.CacheError, match="'zz' is not a hex float32 bit pattern"):
        cache.hex_to_scale("zz")


def test_scales_from_ranges_use_amax_over_127():
    scales = cache.scales_from_ranges({"input": (0.0, 1.0), "conv": (-2.54, 1.0), "dead": (0.0, 0.0)})
    assert scales["input"] == pytest.approx(1.0 / 127)
    assert scales["conv"] == pytest.approx(0.02)
    assert scales["dead"] == cache.MIN_SCALE  # never a zero scale
    with pytest.raises(cache.CacheError, match="tensor 'bad' has a non-finite calibration range"):
        cache.scales_from_ranges({"bad": (0.0, float("inf"))})


def test_round_trip_exact_text(tmp_path):
    scales = {"input": 1.0 / 127, "/enc/Conv_output_0": 0.5, "logits": 2.0}
    data = cache.dumps(scales, "8.5.2", "entropy")
    assert data.decode() == ("TRT-8502-EntropyCalibration2\ninput: 3c010204\n/enc/Conv_output_0: 3f000000\n"
                             "logits: 40000000\n")
    parsed = cache.loads(data)
    assert parsed.header == "TRT-8502-EntropyCalibration2" and parsed.version == 8502
    assert list(parsed.scales) == list(scales)
    for name, scale in scales.items():
        assert cache.scale_to_hex(parsed.scales[name]) == cache.scale_to_hex(scale)
    path = cache.write(tmp_path / "calibration.cache", scales, "10.3.0", "minmax")
    again = cache.read(path)
    assert again.header == "TRT-100300-MinMaxCalibration" and again.amax("logits") == pytest.approx(254.0)
    assert cache.dumps(again.scales, "10.3.0", "minmax") == path.read_bytes()


def test_bad_caches_are_named():
    with pytest.raises(cache.CacheError, match="header is 'hello'; expected TRT-<version>-<algorithm>"):
        cache.loads(b"hello\nx: 3f800000\n")
    with pytest.raises(cache.CacheError, match="line 2 is 'no colon here'; expected '<tensor>: <hex digits>'"):
        cache.loads(b"TRT-8502-EntropyCalibration2\nno colon here\n")
    with pytest.raises(cache.CacheError, match="method 'kl' has no TensorRT calibrator"):
        cache.dumps({}, "8.5.2", "kl")


CACHES = Path(__file__).parent / "caches"  # caches TensorRT wrote, with their sources in caches/SOURCES.md


@pytest.mark.parametrize("name, header, count, probe, value", [
    ("trt8601_segformer.cache", "TRT-8601-EntropyCalibration2", 8, "(Unnamed Layer* 5) [Constant]_output", "3bdd84da"),
    ("trt7000_mnist.cache", "TRT-7000-EntropyCalibration2", 8, "prob", "3c010a14"),
    ("trt8401_unpadded_zero.cache", "TRT-8401-EntropyCalibration2", 7, "(Unnamed Layer* 64) [Shuffle]_output", "0"),
    ("trt100300_colon_names.cache", "TRT-100300-EntropyCalibration2", 3, "input_1:0", "3c010a14"),
    ("trt8502_onnx_names.cache", "TRT-8502-MinMaxCalibration", 3, "onnx::Relu_5", "3d0b7086"),
])
def test_reads_caches_tensorrt_wrote(name, header, count, probe, value):
    parsed = cache.read(CACHES / name)
    assert parsed.header == header
    assert len(parsed.scales) == count
    assert cache.scale_to_hex(parsed.scales[probe]) == value.rjust(8, "0")
    # Written back by jetseg, it reads the same (zero-padded values, names unchanged).
    method = "minmax" if "MinMax" in header else "entropy"
    version = {8601: "8.6.1", 7000: "7.0.0", 8401: "8.4.1", 100300: "10.3.0", 8502: "8.5.2"}[parsed.version]
    again = cache.loads(cache.dumps(parsed.scales, version, method))
    assert again.header == header and again.scales == parsed.scales
