"""The demo's closing lines: headline figures stated honestly and the conditions they were measured under."""
from __future__ import annotations

from jetseg.cli.demo import _headline, conditions_line


def test_headline_states_noise_latency_and_the_strongest_baseline():
    entry = {"speedup_vs_reference": 3.1, "speedup_vs_best_fp32": 1.6, "best_fp32": "us/openvino/openvino-fp32",
             "dice_drop": 0.0, "dice_drop_basis": "labels", "bundle_ratio_vs_reference": 0.261,
             "pipeline_efficiency": 1.02, "pipeline_efficiency_spread": [0.97, 1.06],
             "pipeline_efficiency_note": "above 1 is measurement noise", "added_latency_ms_p50": 0.61,
             "added_latency_ms_p99": 1.9, "paced_fps": 30.0, "speedup_vs_naive_loop": 12.0,
             "naive_loop_outliers": {"flagged": True}}
    line = _headline(entry)
    assert "3.10x ONNX Runtime FP32, 1.60x the fastest FP32 row (us/openvino/openvino-fp32)" in line
    assert "bundle 26% of the FP32 model" in line
    assert "pipeline efficiency 1.02 (runs 0.97-1.06; above 1 is noise, not a gain)" in line
    assert "latency added to the model at 30 fps: p50 0.61 ms, p99 1.90 ms" in line
    assert "12.0x the naive loop (its timings have outliers)" in line
    assert "TensorRT-form" in _headline({"int8_form": "tensorrt"})
    entry.update(added_latency_ms_p99=-0.63, around_model_ms_p50=0.88, around_model_ms_p99=1.32)
    assert ("p50 0.61 ms, p99 -0.63 ms (the pipeline's own work per frame: p50 0.88 ms, p99 1.32 ms)"
            in _headline(entry))


def test_conditions_line_names_machine_load_threads_and_versions():
    report = {"conditions": {"machine": {"cpu": "AMD EPYC", "cores": 2},
                             "versions": {"openvino": "2026.4.1", "tensorrt": "not installed"},
                             "threads": {"cores_usable": 2}, "load_average_start": [0.5, 0.6, 0.7],
                             "load_average_end": [1.0, 0.7, 0.7]},
              "results": [{"kind": "runner", "runner": {"threads": 1}},
                          {"kind": "frame-to-mask", "peer": "naive-loop", "runner": {"threads": "default"}}]}
    assert conditions_line(report) == ("AMD EPYC, 2 usable of 2 cores; load average 0.50/0.60/0.70 at start, "
                                       "1.00/0.70/0.70 at end; inference threads 1; openvino 2026.4.1")
