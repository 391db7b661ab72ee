"""Fixtures for the source tests (the file writers live in srchelpers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from srchelpers import write_video


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4")
