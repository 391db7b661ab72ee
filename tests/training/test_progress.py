"""Progress when stderr is not a terminal: a plain line every few seconds and one at the end."""
from __future__ import annotations

from jetseg.training.progress import LineProgress, bar


def test_lines_every_interval_and_at_the_end():
    now = [0.0]
    lines = []
    with LineProgress(100, "train", "step", interval=5.0, write=lines.append, clock=lambda: now[0]) as progress:
        for _ in range(41):
            now[0] += 0.5
            progress.update(1)
            progress.set_postfix(loss="0.213")
    assert lines == ["train: 10/100 step (10%), 2.0 step/s, eta 0.8 min, loss=0.213",
                     "train: 20/100 step (20%), 2.0 step/s, eta 0.7 min, loss=0.213",
                     "train: 30/100 step (30%), 2.0 step/s, eta 0.6 min, loss=0.213",
                     "train: 40/100 step (40%), 2.0 step/s, eta 0.5 min, loss=0.213",
                     "train: 41/100 step (41%), 2.0 step/s, eta 0.5 min, loss=0.213"]  # the end


def test_bar_is_lines_when_stderr_is_not_a_terminal_and_quick_work_is_silent(capsys):
    with bar(total=3, desc="distill", unit="frame") as progress:  # pytest's captured stderr is no terminal
        progress.update(3)
    assert isinstance(progress, LineProgress)
    assert capsys.readouterr().err == ""  # done within the first interval: no line (errors stay one line)
