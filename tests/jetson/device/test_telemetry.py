"""The telemetry sampler, fed by a real child process that prints tegrastats lines."""
from __future__ import annotations

import sys
import time

import pytest

from jetseg.errors import DeviceError
from jetseg.jetson.device import telemetry
from jetseg.jetson.device.telemetry import TegrastatsSampler, from_jtop, open_sampler
from tests.fixtures.hardware import ON_JETSON

LINE = ("RAM 2337/31920MB (lfb 6820x4MB) CPU [2%@1190,1%@1190] GR3D_FREQ {load}%@1377 GPU@35C "
        "GPU {gpu}mW/0mW CPU 300mW/300mW SOC 1000mW/1000mW CV 0mW/0mW VDDRQ 200mW/200mW SYS5V 1500mW/1500mW")

SCRIPT = """
import sys, time
for load, gpu in ((10, 1000), (50, 3000), (90, 5000)):
    print({line!r}.format(load=load, gpu=gpu), flush=True)
time.sleep(60)
""".format(line=LINE)


def _wait_for(sampler, count, limit=20.0):
    deadline = time.monotonic() + limit
    while sampler.samples < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sampler_reads_lines_and_averages_power(monkeypatch):
    monkeypatch.setattr(telemetry.Sampler, "_read_conditions", lambda self: {"nvpmodel": None, "jetson_clocks": None})
    sampler = TegrastatsSampler(interval_ms=100, command=[sys.executable, "-c", SCRIPT])
    with sampler:
        _wait_for(sampler, 3)
        latest = sampler.latest()
        mean = sampler.mean_power_w()
    assert sampler.samples == 3
    assert latest["gpu_load_pct"] == 90 and latest["power_mw"]["GPU"] == 5000
    assert latest["power_total_mw"] == 5000 + 300 + 1000 + 200 + 1500
    assert mean == pytest.approx((4000 + 6000 + 8000) / 3 / 1000.0)
    assert sampler._proc is None  # the child was stopped
    cond = sampler.conditions()
    assert cond["source"] == "tegrastats" and cond["interval_ms"] == 100 and "nvpmodel" in cond


def test_missing_tool_is_a_device_error():
    sampler = TegrastatsSampler(command=["/nonexistent/tegrastats"])
    with pytest.raises(DeviceError, match="cannot start /nonexistent/tegrastats"):
        sampler.start()


@pytest.mark.skipif(ON_JETSON, reason="checks the behaviour off a Jetson")
def test_no_sampler_off_a_jetson():
    assert open_sampler() is None
    with pytest.raises(DeviceError, match="telemetry interval 1 ms is too short"):
        TegrastatsSampler(interval_ms=1)
    with pytest.raises(DeviceError, match="telemetry source 'x' is unknown"):
        open_sampler(prefer="x")
    with pytest.raises(DeviceError, match="jtop is not usable here; install jetson-stats"):
        open_sampler(prefer="jtop")


def test_jtop_dicts_map_to_the_same_keys():
    stats = {"GPU": 42.0, "RAM": 0.25, "Temp GPU": 40.5, "Temp CV0": -256}
    power = {"rail": {"VDD_GPU_SOC": {"power": 2000}, "VDD_CPU_CV": {"power": 500}}, "tot": {"power": 6000}}
    out = from_jtop(stats, power)
    assert out == {"power_mw": {"VDD_GPU_SOC": 2000, "VDD_CPU_CV": 500}, "power_total_mw": 6000,
                   "gpu_load_pct": 42.0, "ram_used_fraction": 0.25, "temps_c": {"GPU": 40.5}}


def test_doctor_summary_of_a_sample():
    from jetseg.cli.doctor import _now
    from jetseg.jetson.device.tegrastats import parse_line

    sample = parse_line(LINE.format(load=12, gpu=2000))
    assert _now(sample) == "5.0 W, GPU 12% @ 1377 MHz, hottest 35.0 C (GPU)"
    assert _now(None) == "-"
    if not ON_JETSON:
        assert telemetry.sample_once() is None


@pytest.mark.parametrize("hook, reason", [("failing_telemetry", "RuntimeError: sensor gone"),
                                          ("malformed_telemetry", "TypeError: returned list; expected a dict")])
def test_a_broken_telemetry_hook_leaves_metrics_and_health_working_and_counts_its_errors(hook, reason):
    from jetseg.jetson.daemon.config import DaemonConfig
    from jetseg.jetson.daemon.service import Daemon
    from tests.fixtures import hardware

    metrics = Daemon(DaemonConfig(), telemetry_hook=getattr(hardware, hook)).metrics
    for _ in range(3):
        payload, _ = metrics.exposition()  # /metrics
        health = metrics.health()  # /health
    assert "jetseg_device_telemetry_errors 5.0" in payload.decode()  # calls 1, 3, 5 were scrapes
    assert health["device"]["telemetry_errors"] == 6 and health["device"]["error"].startswith(reason)
