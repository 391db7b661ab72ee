"""ONNX Runtime's quantizer chatter (prints, root-logger warnings) shows only with -v (jetseg DEBUG)."""
from __future__ import annotations

import logging

import pytest

pytest.importorskip("onnxruntime")

from jetseg.calibration.ortquiet import quiet_onnxruntime  # noqa: E402
from jetseg.log import setup_logging  # noqa: E402


def _chatter() -> None:
    print("Finding optimal threshold for each tensor using 'entropy' algorithm ...")
    logging.warning("Please consider to run pre-processing before quantization.")


@pytest.mark.parametrize("verbose", [False, True])
def test_chatter_goes_to_debug(capsys, monkeypatch, verbose) -> None:
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in the CLI (pytest adds its own)
    monkeypatch.setattr(logging.getLogger(), "filters", [])
    setup_logging(verbose=verbose)
    try:
        with quiet_onnxruntime():
            _chatter()
        err = capsys.readouterr()
        assert "Finding optimal threshold" not in err.out
        if verbose:
            assert "onnxruntime warning: Please consider to run pre-processing" in err.err
            assert "onnxruntime: Finding optimal threshold" in err.err
        else:
            assert "Please consider" not in err.err and "Finding optimal" not in err.err
    finally:
        setup_logging(verbose=False)
    assert not logging.getLogger().filters  # the root logger is left as it was
    logging.warning("a root warning after the block")
    assert "a root warning after the block" in capsys.readouterr().err


def test_calibrate_prints_no_quantizer_chatter(make_bundle, png_folder, tmp_path, capsys) -> None:
    from jetseg.cli import main

    code = main(["calibrate", str(make_bundle()), "--scans", str(png_folder(12)), "--count", "6", "--holdout",
                 "4", "--target", "cpu", "--out", str(tmp_path / "int8")])
    out = capsys.readouterr()
    assert code == 0, out.err
    for noise in ("Finding optimal threshold", "Number of tensors", "Collecting tensor data", "WARNING:root"):
        assert noise not in out.out and noise not in out.err
