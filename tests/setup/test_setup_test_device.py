"""``./setup.sh test-device``: every device check runs whatever the others did, one summary, non-zero if any
failed. On a fake L4T root (tests/fixtures/fake_l4t.py) with stub ``jetseg`` and ``python -m pytest`` commands
in the venv (JETSEG_SETUP_SKIP_INSTALL=1: no install step)."""
from __future__ import annotations

import subprocess

from tests.fixtures.fake_l4t import fake_device_venv, fake_l4t
from tests.fixtures.paths import REPO


def run_test_device(tmp_path, root=True, **codes):  # codes: doctor, selftest, pytest, merge
    """Runs test-device; returns (exit code, output, report dir, calls logged by the stubs)."""
    fake = fake_l4t(tmp_path / "root")
    if not root:
        (fake.root / "etc/nv_tegra_release").unlink()
    log = fake_device_venv(tmp_path / "venv", **codes)
    out = tmp_path / "report"
    env = fake.env(tmp_path / "venv", JETSEG_SETUP_SKIP_INSTALL="1", JETSEG_SELFTEST_OUT=str(out))
    done = subprocess.run([str(REPO / "setup.sh"), "test-device", "-k", "dla"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(REPO), timeout=120)
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, done.stdout.decode(), out, calls


def test_every_check_runs_when_the_first_ones_fail_and_the_exit_code_says_so(tmp_path):
    code, out, report, calls = run_test_device(tmp_path, doctor=3, selftest=1, pytest=0)
    assert code != 0, out
    assert calls == [
        "jetseg doctor",
        "jetseg selftest --out %s" % report,
        "python -m pytest -m jetson or trt or gpu -rP --junitxml %s/pytest-junit.xml -k dla" % report,
        "jetseg selftest --out %s --merge-junit %s/pytest-junit.xml" % (report, report),
    ]
    summary = (report / "summary.md").read_text()
    assert "| jetseg doctor | 3 | FAILED | %s/doctor.log |" % report in summary
    assert "| jetseg selftest | 1 | FAILED | %s/selftest.log |" % report in summary
    assert "| on-device pytest | 0 | passed | %s/pytest.log |" % report in summary
    assert "Report: %s/report.md and %s/report.json (every selftest check and every on-device test" % (
        report, report) in summary
    assert "GitHub repository" in summary
    assert (report / "report.md").read_text().endswith("merged\n")  # pytest's results joined selftest's report
    assert (report / "report.md").exists() and (report / "pytest-junit.xml").exists()
    assert (report / "doctor.log").read_text() == "doctor: fake\n"
    assert "error: test-device: 2 of 3 checks failed (summary: %s/summary.md)" % report in out


def test_a_failing_pytest_alone_fails_the_run(tmp_path):
    code, out, report, calls = run_test_device(tmp_path, pytest=1)
    assert code != 0, out
    assert len(calls) == 4
    assert "| on-device pytest | 1 | FAILED |" in (report / "summary.md").read_text()


def test_all_passing_exits_zero(tmp_path):
    code, out, report, calls = run_test_device(tmp_path)
    assert code == 0, out
    assert "test-device: all 3 checks passed" in out
    assert "FAILED" not in (report / "summary.md").read_text()


def test_refuses_on_a_non_jetson(tmp_path):
    code, out, report, calls = run_test_device(tmp_path, root=False)
    assert code != 0
    assert "test-device runs on a Jetson (no /etc/nv_tegra_release here)" in out
    assert calls == [] and not report.exists()


def test_a_report_left_from_an_earlier_run_is_not_passed_off_as_this_runs(tmp_path):
    old = tmp_path / "report"
    old.mkdir()
    (old / "pytest-junit.xml").write_text("<testsuites/>")
    fake = fake_l4t(tmp_path / "root")
    fake_device_venv(tmp_path / "venv")
    (tmp_path / "venv/bin/python").write_text("#!/bin/sh\nexit 4\n")  # pytest dies before writing its xml
    env = fake.env(tmp_path / "venv", JETSEG_SETUP_SKIP_INSTALL="1", JETSEG_SELFTEST_OUT=str(old))
    done = subprocess.run([str(REPO / "setup.sh"), "test-device"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(REPO), timeout=120)
    assert done.returncode != 0
    assert not (old / "pytest-junit.xml").exists()
    summary = (old / "summary.md").read_text()
    assert "| on-device pytest | 4 | FAILED |" in summary
    assert "Missing: %s/pytest-junit.xml" % old in summary


def test_a_broken_merge_is_reported_but_a_merge_that_found_failures_is_not_counted_twice(tmp_path):
    code, out, report, calls = run_test_device(tmp_path, merge=2)
    assert code != 0 and "| report merge | 2 | FAILED | %s/merge.log |" % report in (report / "summary.md").read_text()
    code, out, report, calls = run_test_device(tmp_path / "again", merge=1)
    assert code == 0, out
    assert "test-device: all 3 checks passed" in out
