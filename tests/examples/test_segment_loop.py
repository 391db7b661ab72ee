"""examples/segment_loop.py runs as a newcomer would run it, and writes one mask per frame."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jetseg.jetson.sinks.masks import read_mask

ROOT = Path(__file__).resolve().parents[2]


def test_segment_loop_writes_a_mask_and_a_line_per_frame(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "segment_loop.py"),
                          "--model", str(ROOT / "models" / "bundles" / "ultrasound-unet"),
                          "--source", "synthetic://ultrasound?frames=3", "--sink", "masks://%s" % out,
                          "--backend", "onnxrt"],
                         cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    printed = run.stdout.splitlines()
    assert [line.split(":")[0] for line in printed] == ["frame 0", "frame 1", "frame 2"]
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) == 3
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2]
    for record, path in zip(records, masks):
        lesion = int((read_mask(path) == 1).sum())
        assert lesion > 0 and record["areas_px"]["lesion"] == lesion
        assert "lesion %d px" % lesion in printed[record["frame"]]
