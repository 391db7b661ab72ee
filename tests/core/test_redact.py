"""jetseg.redact: the one rule for secrets in text and in config dumps."""
from __future__ import annotations

from jetseg.redact import MASK, redact, redact_data


def test_redact_text():
    assert redact("rtsp://admin:pw@10.0.0.5/live?token=abc&x=1") == "rtsp://admin:***@10.0.0.5/live?token=***&x=1"


def test_redact_data_masks_secret_fields_and_strings():
    config = {"web": {"token": "s3cret", "host": "127.0.0.1"},
              "sinks": [{"uri": "http://0.0.0.0:8080?token=abc&fps=5", "options": {"Token": "xyz", "fps": 5}},
                        {"uri": "null://", "options": {"token": None}}],
              "source": {"uri": "rtsp://admin:pw@cam/live", "options": {"password": ""}}}
    assert redact_data(config) == {
        "web": {"token": MASK, "host": "127.0.0.1"},
        "sinks": [{"uri": "http://0.0.0.0:8080?token=***&fps=5", "options": {"Token": MASK, "fps": 5}},
                  {"uri": "null://", "options": {"token": None}}],  # unset stays visible as unset
        "source": {"uri": "rtsp://admin:***@cam/live", "options": {"password": ""}}}
