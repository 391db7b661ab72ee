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


def test_redact_password_containing_at_signs_up_to_the_last_at_of_the_authority():
    assert redact("rtsp://admin:p@ssw0rd@127.0.0.1/live") == "rtsp://admin:***@127.0.0.1/live"
    assert redact("open rtsp://admin:a@b@c@cam:554/x@y failed") == "open rtsp://admin:***@cam:554/x@y failed"
    assert redact("rtsp://tok@en@cam/live") == "rtsp://***@cam/live"
    assert redact("http://127.0.0.1:8080/a@b") == "http://127.0.0.1:8080/a@b"  # an @ in the path is no userinfo
    assert redact("'rtsp://u:x@y@h/l' and rtsp://v:z@h2") == "'rtsp://u:***@h/l' and rtsp://v:***@h2"
