"""The demo's closing lines: headline figures stated honestly and the conditions they were measured under."""
from __future__ import annotations

from jetseg.cli.demo import _headline, conditions_line


def test_headline_states_noise_latency_and_the_fastest_float_baseline_first():
    entry = {"speedup_vs_reference": 3.1, "speedup_vs_best_fp32": 2.9, "best_fp32": "us/openvino",
             "speedup_vs_fastest_float": 1.3, "fastest_float": "us/openvino/openvino-bf16",
             "int8_verdict": "INT8 is 1.30x the fastest float row (us/openvino/openvino-bf16, bf16)",
             "dice_drop": 0.0, "dice_drop_basis": "labels", "bundle_ratio_vs_reference": 0.261,
             "pipeline_efficiency": 1.02, "pipeline_efficiency_spread": [0.97, 1.06],
             "pipeline_efficiency_note": "above 1 is measurement noise", "added_latency_ms_p50": 0.61,
             "added_latency_ms_p99": 1.9, "paced_fps": 30.0, "speedup_vs_naive_loop": 12.0,
             "naive_loop_outliers": {"flagged": True}}
    line = _headline(entry)
    assert line.startswith("1.30x the fastest float row (us/openvino/openvino-bf16), 2.90x the fastest exact-FP32 "
                           "row (us/openvino), 3.10x ONNX Runtime FP32")
    assert line.endswith("INT8 is 1.30x the fastest float row (us/openvino/openvino-bf16, bf16)")
    assert "bundle 26% of the FP32 model" in line
    assert "pipeline efficiency 1.02 (runs 0.97-1.06; above 1 is noise, not a gain)" in line
    assert "latency the pipeline adds per frame at 30 fps: p50 0.61 ms, p99 1.90 ms" in line
    assert "12.0x the naive loop (its timings have outliers)" in line
    assert "TensorRT-form" in _headline({"int8_form": "tensorrt"})


def test_conditions_line_names_machine_load_threads_and_versions():
    report = {"conditions": {"machine": {"cpu": "AMD EPYC", "cores": 2},
                             "versions": {"openvino": "2026.4.1", "tensorrt": "not installed"},
                             "threads": {"cores_usable": 2}, "load_average_start": [0.5, 0.6, 0.7],
                             "load_average_end": [1.0, 0.7, 0.7]},
              "results": [{"kind": "runner", "runner": {"threads": 1}},
                          {"kind": "frame-to-mask", "peer": "naive-loop", "runner": {"threads": "default"}}]}
    assert conditions_line(report) == ("AMD EPYC, 2 usable of 2 cores; load average 0.50/0.60/0.70 at start, "
                                       "1.00/0.70/0.70 at end; inference threads 1; openvino 2026.4.1")
