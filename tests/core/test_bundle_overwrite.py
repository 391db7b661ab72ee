"""--out and --overwrite: one rule for every command (jetseg.bundle.check_out / writing), issue 20."""
from __future__ import annotations

import os

import pytest

from jetseg.bundle import OUTPUT_MARKER, check_out, in_progress, save_bundle, writing
from jetseg.errors import JetsegError
from jetseg.spec import Spec


def test_overwrite_replaces_only_what_jetseg_wrote(tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    with pytest.raises(JetsegError, match="--overwrite replaces only a folder jetseg wrote .* is a folder jetseg "
                                          "did not write, so it is left alone"):
        save_bundle(mine, b"m", Spec(), overwrite=True)
    assert (mine / "thesis.txt").read_text() == "years of work"
    made = save_bundle(tmp_path / "b", b"m", Spec()).path
    assert (made / OUTPUT_MARKER).is_file() and OUTPUT_MARKER not in made.joinpath("manifest.json").read_text()
    save_bundle(made, b"m2", Spec(), overwrite=True)
    assert (made / "model.onnx").read_bytes() == b"m2"


def test_a_file_is_never_overwritten_and_nothing_is_left_beside_it(tmp_path):
    afile = tmp_path / "afile.txt"
    afile.write_text("keep")
    with pytest.raises(JetsegError, match="afile.txt is a file jetseg did not write"):
        with writing(afile, overwrite=True):
            pass
    assert afile.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt"]


def test_old_copy_goes_to_a_fresh_folder_not_a_users_one(tmp_path):
    made = save_bundle(tmp_path / "b", b"m", Spec()).path
    users = tmp_path / ".b.old"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    save_bundle(made, b"m2", Spec(), overwrite=True)
    assert (users / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.old", "b"]


def test_never_an_input_nor_a_parent_of_one(tmp_path):
    bundle = save_bundle(tmp_path / "inputs" / "teacher", b"m", Spec()).path
    (tmp_path / "inputs" / OUTPUT_MARKER).write_text("")  # even a folder jetseg wrote
    for out in (bundle, tmp_path / "inputs"):
        with pytest.raises(JetsegError, match="is or holds an input"):
            check_out(out, overwrite=True, inputs=[bundle])
    assert (bundle / "model.onnx").is_file()


def test_never_the_working_folder_or_above(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / OUTPUT_MARKER).write_text("")
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        with pytest.raises(JetsegError, match="is the working folder or one above it"):
            check_out(out, overwrite=True)


def test_a_symlink_out_is_not_followed(tmp_path):
    target = save_bundle(tmp_path / "b", b"m", Spec()).path
    link = tmp_path / "link"
    os.symlink(str(target), str(link))
    with pytest.raises(JetsegError, match="is a symbolic link jetseg did not write"):
        check_out(link, overwrite=True)


def test_in_progress_names_exactly_the_folders_being_written(tmp_path):
    (tmp_path / ".out.backup").mkdir()
    with writing(tmp_path / "out") as tmp:
        assert in_progress() == [tmp]
    assert in_progress() == []
    assert (tmp_path / ".out.backup").is_dir()
