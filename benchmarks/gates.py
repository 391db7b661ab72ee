"""Pass/fail gates for device CI: minimum fps, maximum Dice drop, and regressions against a baseline report.

Gates apply to the candidate rows (the bundles given on the command line; the reference and peer rows
when no candidate was given). Every gate yields one line saying what was measured and what was required.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from jetseg.errors import JetsegError
from jetseg.records import BenchReport

Key = Tuple[str, str, str, str, int]


def _key(row: Dict[str, Any]) -> Key:
    return (row["bundle"], row["backend"], row["precision"], row["kind"], int(row["batch"]))


def _name(row: Dict[str, Any]) -> str:
    return "%s on %s (%s, batch %s)" % (row["bundle"], row["backend"], row["kind"], row["batch"])


@dataclass(frozen=True)
class Baseline:
    """A previous ``jetseg bench`` report and the file it was read from (named in the gates' messages)."""

    path: str
    report: BenchReport


def load_baseline(path: Any) -> Baseline:
    """Read a previous report.json (or the directory holding it).

    Raises:
        JetsegError: ``--baseline: `` and why the file cannot be read as a bench report.
    """
    p = Path(path)
    if p.is_dir():
        p = p / BenchReport.FILE
    try:
        return Baseline(str(p), BenchReport.read(p))
    except JetsegError as exc:
        raise JetsegError("--baseline: %s" % exc) from None


@dataclass
class Gates:
    """Thresholds; None disables a gate.

    Attributes:
        min_fps: every gated row must reach this throughput.
        max_dice_drop: every gated row's Dice drop vs FP32 must not exceed this.
        baseline: a previous report (see :func:`load_baseline`); rows matched by bundle, backend,
            precision, kind and batch.
        fps_tolerance: relative fps loss vs the baseline that still passes (0.10 = 10 %).
        dice_tolerance: absolute Dice-drop increase vs the baseline that still passes.
    """

    min_fps: Optional[float] = None
    max_dice_drop: Optional[float] = None
    baseline: Optional[Baseline] = None
    fps_tolerance: float = 0.10
    dice_tolerance: float = 0.005

    def __post_init__(self) -> None:
        if self.min_fps is not None and not (math.isfinite(self.min_fps) and self.min_fps > 0):  # nan too
            raise JetsegError("--min-fps is %s; expected a positive number of frames per second" % self.min_fps)
        if self.max_dice_drop is not None and not 0 <= self.max_dice_drop <= 1:
            raise JetsegError("--max-dice-drop is %s; expected a Dice difference between 0 and 1, e.g. 0.01"
                              % self.max_dice_drop)
        if not 0 <= self.fps_tolerance < 1:
            raise JetsegError("--tolerance is %s; expected a fraction between 0 and 1, e.g. 0.1"
                              % self.fps_tolerance)

    @property
    def active(self) -> bool:
        return self.min_fps is not None or self.max_dice_drop is not None or self.baseline is not None

    def evaluate(self, report: Dict[str, Any]) -> List[Dict[str, Any]]:
        """One verdict per gate and row: ``{"gate", "row", "passed", "message"}``."""
        rows = [r for r in report["results"] if r.get("role") == "candidate"]
        if not rows:
            rows = [r for r in report["results"] if r.get("role") == "reference"]
        out: List[Dict[str, Any]] = []
        for row in rows:
            if self.min_fps is not None:
                ok = row["fps"] is not None and row["fps"] >= self.min_fps
                out.append(_verdict("min-fps", row, ok, "%s ran at %.1f fps, %s the required %g fps"
                                    % (_name(row), row["fps"] or 0.0, "meeting" if ok else "below", self.min_fps)))
            if self.max_dice_drop is not None and row["kind"] != "e2e":
                out.append(self._dice(row))
        if self.baseline is not None:
            out += self._baseline(rows)
        return out

    def _dice(self, row: Dict[str, Any]) -> Dict[str, Any]:
        assert self.max_dice_drop is not None, "called only with the max-dice-drop gate set"
        drop = row.get("dice_drop")
        if row.get("task", "segmentation") == "enhancement":  # registration: the warped-label Dice drop
            return _verdict("max-dice-drop", row, False,
                            "%s is an %s model: it has no masks and no Dice; drop --max-dice-drop (its PSNR and "
                            "SSIM are in the table; calibrate gates them)" % (_name(row), row["task"]))
        if drop is None:
            return _verdict("max-dice-drop", row, False,
                            "%s has no Dice: no frame shows a foreground class in either mask; benchmark on data "
                            "that contains the structure" % _name(row))
        ok = drop <= self.max_dice_drop
        return _verdict("max-dice-drop", row, ok, "%s lost %.4f Dice vs FP32 (basis: %s), %s the allowed %.4f"
                        % (_name(row), drop, row.get("dice_drop_basis"), "within" if ok else "more than",
                           self.max_dice_drop))

    def _baseline(self, rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        assert self.baseline is not None, "called only with a baseline"
        base = {_key(r): r for r in self.baseline.report.results if isinstance(r, dict) and "bundle" in r}
        where = self.baseline.path
        out = []
        for row in rows:
            old = base.get(_key(row))
            if old is None:
                continue
            if old.get("fps") and row.get("fps") is not None:
                floor = old["fps"] * (1.0 - self.fps_tolerance)
                ok = row["fps"] >= floor
                change = (row["fps"] / old["fps"] - 1.0) * 100.0
                out.append(_verdict("baseline-fps", row, ok, "%s ran at %.1f fps vs %.1f in %s (%+.1f%%, tolerance "
                                    "-%.0f%%)%s" % (_name(row), row["fps"], old["fps"], where, change,
                                                    self.fps_tolerance * 100, "" if ok else ": regression")))
            if old.get("dice_drop") is not None and row.get("dice_drop") is not None:
                ok = row["dice_drop"] <= old["dice_drop"] + self.dice_tolerance
                out.append(_verdict("baseline-dice", row, ok, "%s Dice drop %.4f vs %.4f in %s (tolerance +%.4f)%s"
                                    % (_name(row), row["dice_drop"], old["dice_drop"], where,
                                       self.dice_tolerance, "" if ok else ": regression")))
        return out


def _verdict(gate: str, row: Dict[str, Any], passed: bool, message: str) -> Dict[str, Any]:
    return {"gate": gate, "row": _name(row), "passed": bool(passed), "message": "%s: %s" % (gate, message)}


def failures(verdicts: List[Dict[str, Any]]) -> List[str]:
    return [v["message"] for v in verdicts if not v["passed"]]
