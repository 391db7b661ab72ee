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
