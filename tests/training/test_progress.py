"""Progress when stderr is not a terminal: a plain line every few seconds and one at the end."""
from __future__ import annotations

from jetseg.training.progress import LineProgress, bar


def test_lines_every_interval_and_at_the_end():
    now = [0.0]
    lines = []
    with LineProgress(100, "train", "step", interval=5.0, write=lines.append, clock=lambda: now[0]) as progress:
        for _ in range(40):
            now[0] += 0.5
            progress.update(1)
            progress.set_postfix(loss="0.213")
    assert lines == ["train: 10/100 step (10%), 2.0 step/s, eta 0.8 min, loss=0.213",
                     "train: 20/100 step (20%), 2.0 step/s, eta 0.7 min, loss=0.213",
                     "train: 30/100 step (30%), 2.0 step/s, eta 0.6 min, loss=0.213",
                     "train: 40/100 step (40%), 2.0 step/s, eta 0.5 min, loss=0.213"]


def test_bar_is_lines_when_stderr_is_not_a_terminal(capsys):
    with bar(total=3, desc="distill", unit="frame") as progress:  # pytest's captured stderr is no terminal
        progress.update(3)
        progress.set_postfix({"loss": "0.5"})
    assert isinstance(progress, LineProgress)
    err = capsys.readouterr().err
    assert err.startswith("distill: 3/3 frame (100%), ") and err.endswith(" frame/s, loss=0.5\n")
    assert "\r" not in err
