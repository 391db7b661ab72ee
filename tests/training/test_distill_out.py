"""jetseg distill --out: the one --overwrite rule, and a SIGTERM that removes only what the run made (issue 20)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from jetseg.cli import main  # noqa: E402

SCANS = "synthetic://ultrasound?frames=400&width=160&height=120"
FAST = ["--frames", "8", "--every", "4", "--val-frames", "4", "--val-every", "2", "--steps", "4", "--batch", "2",
        "--eval-interval", "2", "--threads", "1"]


def _last_err_line(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_out_dot_and_a_file_are_refused_in_one_line(make_teacher, tmp_path_factory, capsys, monkeypatch):
    teacher = make_teacher()
    work = tmp_path_factory.mktemp("work")
    (work / "afile.txt").write_text("keep")
    monkeypatch.chdir(work)
    for out, message in ((".", "is the working folder or one above it"),
                         ("afile.txt", "afile.txt is a file jetseg did not write, so it is left alone"),
                         (str(teacher.parent), "is or holds an input")):
        code, line = _last_err_line(capsys, "distill", str(teacher), "--scans", SCANS, "--out", out, "--overwrite",
                                    "--gate-dice", "0", *FAST)
        assert code != 0 and message in line, line
        assert "Traceback" not in line
    assert sorted(p.name for p in work.iterdir()) == ["afile.txt"] and (work / "afile.txt").read_text() == "keep"


def test_sigterm_spares_a_users_sibling_folders(make_teacher, tmp_path):
    teacher = make_teacher()
    backup = tmp_path / ".stud6.backup"
    backup.mkdir()
    (backup / "weights.pt").write_text("a user's backup")
    argv = [sys.executable, "-m", "jetseg", "distill", str(teacher), "--scans", SCANS, "--out",
            str(tmp_path / "stud6")] + FAST[:-6] + ["--steps", "100000", "--eval-interval", "1000", "--threads", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    line = ""
    while "distilling" not in line and time.monotonic() < deadline:  # training has started
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "distill ended early"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in err
    assert (backup / "weights.pt").read_text() == "a user's backup"
