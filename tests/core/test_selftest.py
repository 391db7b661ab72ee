"""`jetseg selftest`: portable checks pass here, device checks skip with a reason, both reports are written."""
from __future__ import annotations

import json

from jetseg import selftest
from jetseg.cli import main
from jetseg.errors import DeviceError
from jetseg.optional import available


def test_run_check_statuses():
    assert selftest.run_check("a", "portable", lambda: "fine").status == "passed"
    skipped = selftest.run_check("b", "device", lambda: (_ for _ in ()).throw(selftest.Skip("no GPU here")))
    assert (skipped.status, skipped.detail) == ("skipped", "no GPU here")

    def broken():
        raise DeviceError("TensorRT cannot create its builder")

    failed = selftest.run_check("c", "device", broken)
    assert (failed.status, failed.detail) == ("failed", "TensorRT cannot create its builder")
    assert selftest.exit_code([skipped]) == 0 and selftest.exit_code([skipped, failed]) == 1


def test_selftest_here(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["selftest", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert {status[n] for n in ("bundles", "preprocessing", "onnxruntime", "calibration")} == {"passed"}
    assert status["openvino"] == ("passed" if available("openvino") else "skipped")
    device = [c for c in report["checks"] if c["group"] == "device"]
    assert {c["name"] for c in device} >= {"capture", "fps-fp32", "fps-fp16", "fps-int8", "dla-int8"}
    assert device and all(c["status"] == "skipped" and "not a Jetson" in c["detail"] for c in device)
    md = (out / "report.md").read_text()
    passed = sum(v == "passed" for v in status.values())  # openvino: passed here, skipped on JetPack 5's stack
    counts = "%d passed, 0 failed, %d skipped" % (passed, len(status) - passed)
    assert "**%s**" % counts in md and "| calibration | portable | passed |" in md
    assert "## How to send this report" in md and "- tensorrt: " in md and "- nvpmodel: " in md
    assert "selftest: " + counts in capsys.readouterr().out


def test_report_replaces_a_planted_symlink_without_following_it(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "report.json").symlink_to(victim)
    selftest.write_report(out, [selftest.run_check("a", "portable", lambda: "fine")], {})
    assert victim.read_text() == "precious"
    assert not (out / "report.json").is_symlink() and json.loads((out / "report.json").read_text())["checks"]
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]  # no temporary file left


def test_report_json_that_is_a_folder_is_one_line_before_any_check(tmp_path, capsys):
    out = tmp_path / "report"
    (out / "report.json").mkdir(parents=True)
    assert main(["selftest", "--out", str(out)]) != 0
    err = capsys.readouterr()
    assert "report.json is a folder; remove it or choose another --out" in err.err and "Traceback" not in err.err
    assert "passed" not in err.out  # refused before the checks ran


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.jetson.device.test_on_device" name="test_fp16" time="1.5"/>
<testcase classname="tests.jetson.device.test_on_device" name="test_dla" time="2.0">
<failure message="DeviceError: TensorRT could not build the engine">trace</failure></testcase>
<testcase classname="tests.jetson.trt.test_polygraphy" name="test_x" time="0">
<skipped message="polygraphy is not installed" type="pytest.skip">skip</skipped></testcase>
</testsuite></testsuites>"""


def test_the_on_device_pytest_results_merge_into_the_one_report(tmp_path, capsys):
    out = tmp_path / "report"
    selftest.write_report(out, [selftest.CheckResult("engine-fp16", "device", "passed", "ok")], {"l4t": "35.4.1"})
    (out / "pytest-junit.xml").write_text(JUNIT)
    assert main(["selftest", "--out", str(out), "--merge-junit", str(out / "pytest-junit.xml")]) == 1
    report = json.loads((out / "report.json").read_text())
    rows = [(c["name"], c["group"], c["status"], c["detail"]) for c in report["checks"]]
    assert rows == [("engine-fp16", "device", "passed", "ok"),
                    ("tests.jetson.device.test_on_device::test_fp16", "pytest", "passed", ""),
                    ("tests.jetson.device.test_on_device::test_dla", "pytest", "failed",
                     "DeviceError: TensorRT could not build the engine"),
                    ("tests.jetson.trt.test_polygraphy::test_x", "pytest", "skipped", "polygraphy is not installed")]
    assert report["summary"] == {"passed": 2, "failed": 1, "skipped": 1} and report["machine"] == {"l4t": "35.4.1"}
    assert "- l4t: 35.4.1" in (out / "report.md").read_text()
    # merging twice does not duplicate pytest's rows
    selftest.merge_junit(out, out / "pytest-junit.xml")
    assert len(json.loads((out / "report.json").read_text())["checks"]) == 4


def test_a_missing_report_or_junit_file_is_a_failed_check_not_a_partial_report(tmp_path):
    report = selftest.merge_junit(tmp_path, tmp_path / "pytest-junit.xml")
    assert [(c["name"], c["status"]) for c in report["checks"]] == [("selftest", "failed"),
                                                                    ("on-device pytest", "failed")]
    assert "see selftest.log" in report["checks"][0]["detail"] and "see pytest.log" in report["checks"][1]["detail"]


def test_on_the_doubles_failure_modes_each_device_check_fails_and_the_rest_still_run(tmp_path, monkeypatch):
    """A Jetson whose TensorRT cannot create a builder (the double without a GPU) and without JetPack's GStreamer
    elements: every device check is reported failed with its message, none stops the others, the build logs of
    the failed engine checks are attached."""
    from jetseg.cli import selftest as selftest_cli
    from jetseg.jetson.device import capture, info
    from tests.fixtures import fake_tensorrt

    fake_tensorrt.install(monkeypatch, "8.5.2.2", gpu=False)
    jetson = info.DeviceInfo(is_jetson=True, model="NVIDIA Jetson AGX Xavier", l4t="35.4.1", jetpack="5.1.2",
                             dla_cores=2, tensorrt="8.5.2.2", cuda="11.4")
    monkeypatch.setattr(info, "describe", lambda root="/", run_tools=True: jetson)
    monkeypatch.setattr(info, "identity", lambda root="/": ("xavier", "72"))
    monkeypatch.setattr(selftest_cli, "portable_checks", lambda state: [])  # the device side only: fast
    monkeypatch.setattr(capture, "capture_facts", lambda: capture.CaptureFacts(
        gst_inspect="/usr/bin/gst-inspect-1.0", elements={"nvarguscamerasrc": False, "nvv4l2decoder": True,
                                                          "nvvidconv": True}))
    out = tmp_path / "report"
    assert main(["selftest", "--out", str(out)]) == 1
    checks = {c["name"]: c for c in json.loads((out / "report.json").read_text())["checks"]}
    assert checks["capture"]["status"] == "failed" and checks["capture"]["detail"] == (
        "AssertionError: GStreamer elements missing: nvarguscamerasrc (JetPack's nvidia-l4t-gstreamer)")
    for name in ("engine-fp32", "engine-fp16", "trt-runner", "fps-fp32", "fps-fp16", "daemon-trt", "power-nvpmodel"):
        assert checks[name]["status"] == "failed" and checks[name]["detail"], name
    assert checks["engine-fp32"]["data"]["build_log"] == "build-logs/engine-fp32.log"
    assert (out / "build-logs/engine-fp32.log").exists()
    for name in ("engine-int8", "dla-int8", "fps-int8"):  # no INT8 bundle without the calibration check
        assert checks[name]["status"] == "skipped" and "calibration" in checks[name]["detail"], name
    assert "build-logs/engine-fp32.log" in (out / "report.md").read_text()
