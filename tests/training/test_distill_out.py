"""jetseg distill --out: the one --overwrite rule (issue 20)."""
from __future__ import annotations

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
