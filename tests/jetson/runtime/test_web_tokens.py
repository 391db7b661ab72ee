"""The web viewer's token and address, as `jetseg run --check` and the run see them (issue 20, medium): one
rule for every token (option, --token, config, $JETSEG_WEB_TOKEN), checked before anything runs, so --check
accepts exactly what the run accepts; and the sink count is capped."""
from __future__ import annotations

import time

import pytest

from tests.fixtures.processes import jetseg, last_line

RULE = "at least 16 characters, only letters, digits and - . _ ~"


def _check(bundle, *args, env=None):
    return jetseg("run", "--model", str(bundle.path), "--backend-option", "threads=1", *args, "--check", env=env)


@pytest.mark.parametrize("how", ["option", "flag"])
@pytest.mark.parametrize("token", ["bad token!-0123456789", "   ", "short-token"])
def test_check_refuses_the_tokens_the_run_refuses(tiny_bundle, token, how):
    args = (("--sink", "http://127.0.0.1:0?token=" + token) if how == "option"
            else ("--sink", "http://127.0.0.1:0", "--token", token))
    line = last_line(_check(tiny_bundle, *args))
    assert RULE in line or "token= is empty" in line or "is blank" in line, line
    if token.strip():
        assert token not in line  # a token is never printed, even a bad one


def test_an_empty_token_in_the_environment_is_an_error_not_auth_off(tiny_bundle):
    line = last_line(_check(tiny_bundle, "--sink", "http://127.0.0.1:0", env={"JETSEG_WEB_TOKEN": ""}))
    assert line == ("jetseg run: error: JETSEG_WEB_TOKEN is set but empty; set it to a token (%s) or unset it "
                    "for a viewer without a token" % RULE)


def test_a_good_token_passes_check(tiny_bundle):
    done = _check(tiny_bundle, "--sink", "http://127.0.0.1:0", env={"JETSEG_WEB_TOKEN": "viewer-tok3n-xyz.0"})
    assert done.returncode == 0, done.stderr


def test_user_and_password_in_the_viewer_address_get_a_token_hint_not_an_ipv6_one(tiny_bundle):
    line = last_line(_check(tiny_bundle, "--sink", "http://user:pa55word@127.0.0.1:0"))
    assert line == ("jetseg run: error: http://user:***@127.0.0.1:0: the web viewer's address takes no user or "
                    "password; protect it with a token (the token= option or --token) and give http://HOST:PORT")


def test_thousands_of_sinks_are_refused_quickly(tiny_bundle):
    started = time.monotonic()
    line = last_line(_check(tiny_bundle, *(["--sink", "null://"] * 2000)))
    assert time.monotonic() - started < 20
    assert line == "jetseg run: error: 2000 sinks; at most 32 are allowed (one per output)"
