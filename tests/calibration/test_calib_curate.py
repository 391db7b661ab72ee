"""Curation: k-center greedy is deterministic and diverse; the held-out set is disjoint."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.calibration.curate import GAP, evenly_spaced, group_of, k_center_greedy, split
from jetseg.errors import JetsegError


def _clusters(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    # 40 frames: 37 near the first centre (a long static stretch), one frame in each other cluster
    rows = [centres[0] + rng.normal(0, 0.1, 2) for _ in range(37)] + [centres[i] for i in (1, 2, 3)]
    order = rng.permutation(len(rows))
    return np.array(rows)[order], order


def test_k_center_covers_rare_views():
    feats, order = _clusters()
    picked = k_center_greedy(feats, 4, range(len(feats)))
    clusters = {tuple(np.round(feats[i] / 10.0).astype(int)) for i in picked}
    assert clusters == {(0, 0), (1, 0), (0, 1), (1, 1)}


def test_split_per_frame_is_deterministic_and_disjoint():
    feats = np.random.default_rng(3).normal(size=(100, 8))
    names = ["img%03d.png" % i for i in range(100)]
    calib, held, method = split(feats, 20, 10, names)
    assert (calib, held, method) == split(feats.copy(), 20, 10, names)
    assert method == "per-frame"
    assert len(calib) == 20 and len(held) == 10 and not set(calib) & set(held)
    assert held == evenly_spaced(100, 10) == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]
    assert calib == sorted(calib)


def test_split_one_sequence_holds_out_a_block_with_a_gap():
    feats = np.random.default_rng(3).normal(size=(100, 8))
    calib, held, method = split(feats, 20, 10, ["cine.dcm"] * 100)
    assert method == "block" and held == list(range(90, 100))
    assert max(calib) < 90 - GAP  # no calibration frame next to a held-out one


def test_split_several_files_holds_out_whole_files():
    feats = np.random.default_rng(3).normal(size=(60, 8))
    groups = [group_of("cine%d.dcm#%d" % (i // 20, i % 20)) for i in range(60)]
    calib, held, method = split(feats, 20, 10, groups)
    assert method == "by-file"
    held_files = {groups[i] for i in held}
    assert len(held_files) == 1 and not held_files & {groups[i] for i in calib}
    assert len(held) == 20


def test_split_shrinks_when_frames_are_few(caplog):
    feats = np.random.default_rng(0).normal(size=(10, 4))
    calib, held, _ = split(feats, 64, 32)
    # one sequence keeps its gap however few frames there are: 4 calibration, 4 left out, 2 held out
    assert held == [8, 9] and calib == [0, 1, 2, 3]
    assert ("only 10 usable frames for --count 64 + --holdout 32; using 4 for calibration and 2 held out (split "
            "block: one sequence, 4 frames left out between them)") in caplog.text
    calib, held, _ = split(feats[:2], 64, 32)
    assert len(calib) == 1 and len(held) == 1


def test_duplicates_fill_in_stream_order():
    feats = np.zeros((6, 3))
    assert k_center_greedy(feats, 3, [1, 2, 3, 4, 5]) == [1, 2, 3]


def test_split_errors():
    with pytest.raises(JetsegError, match="only 1 usable frame; calibration needs at least 2"):
        split(np.zeros((1, 4)), 4, 2)
    with pytest.raises(JetsegError, match="--count 0 is invalid; expected a positive number of calibration frames"):
        split(np.zeros((8, 4)), 0, 2)
    with pytest.raises(JetsegError, match="--holdout 0 is invalid"):
        split(np.zeros((8, 4)), 4, 0)


def test_split_one_short_cine_keeps_the_gap():
    calib, held, method = split(np.random.default_rng(1).normal(size=(30, 4)), 64, 32, ["cine.dcm"] * 30)
    assert method == "block" and held == list(range(23, 30)) and calib == list(range(0, 19))


def test_split_a_long_cine_among_single_frames_stays_for_calibration(caplog):
    """The issue-19 folder: three single-frame files and a 30-frame cine; the cine is not held out whole
    (that left 2 frames to calibrate), the single files are, and the log says what calibration.json does."""
    groups = ["a.dcm", "b.dcm"] + ["cine.dcm"] * 30 + ["d.dcm"]
    calib, held, method = split(np.random.default_rng(2).normal(size=(33, 4)), 64, 32, groups)
    assert method == "by-file"
    assert {groups[i] for i in held} == {"a.dcm", "b.dcm", "d.dcm"} and len(calib) == 30
    assert not {groups[i] for i in held} & {groups[i] for i in calib}
    assert "using 30 for calibration and 3 held out (split by-file: 3 whole file(s) of 4)" in caplog.text


def test_split_several_files_keeps_count_frames_to_calibrate():
    groups = ["f%d" % (i // 40) for i in range(200)]  # five files of 40 frames
    calib, held, _ = split(np.random.default_rng(3).normal(size=(200, 4)), 64, 32, groups)
    assert len(calib) == 64 and len(held) == 40  # one whole file: the nearest to 32 that leaves 64
