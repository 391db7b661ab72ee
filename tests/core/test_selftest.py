"""`jetseg selftest`: portable checks pass here, device checks skip with a reason, both reports are written."""
from __future__ import annotations

import json

from jetseg import selftest
from jetseg.cli import main
from jetseg.errors import DeviceError


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
    device = [c for c in report["checks"] if c["group"] == "device"]
    assert device and all(c["status"] == "skipped" and "not a Jetson" in c["detail"] for c in device)
    md = (out / "report.md").read_text()
    assert "**4 passed, 0 failed, 7 skipped**" in md and "| calibration | portable | passed |" in md
    assert "selftest: 4 passed, 0 failed, 7 skipped" in capsys.readouterr().out
