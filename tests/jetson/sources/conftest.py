"""Fixtures for the source tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.media import write_video


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4")
