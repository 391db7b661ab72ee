"""The one rule for the web viewer's token, wherever it comes from (``token=``, ``--token``, ``web.token``,
``$JETSEG_WEB_TOKEN``): checked when the sink is built, so ``jetseg run --check`` refuses what the run would.

A token travels in URLs and a cookie, so it is URL-safe; it guards patient images, so it is long enough
not to be guessed. Messages never repeat the token.
"""
from __future__ import annotations

from jetseg.errors import SinkError

MIN_TOKEN_CHARS = 16
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
TOKEN_RULE = "at least %d characters, only letters, digits and - . _ ~" % MIN_TOKEN_CHARS
GENERATE = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"


def check_token(token: str, where: str) -> str:
    """Return ``token`` if it follows the rule, else raise a SinkError naming ``where`` it came from.

    Args:
        token: the token as given.
        where: where it came from, for the message (``--token (web.token)``, ``JETSEG_WEB_TOKEN``, ...).
    """
    if not token.strip():
        raise SinkError("%s is blank; give a token (%s) or leave it out for a viewer without a token; %s"
                        % (where, TOKEN_RULE, GENERATE))
    problems = []
    if len(token) < MIN_TOKEN_CHARS:
        problems.append("has %d characters" % len(token))
    if not TOKEN_CHARS.issuperset(token):
        problems.append("has characters other than letters, digits and - . _ ~")
    if problems:
        raise SinkError("the web viewer's token from %s %s; expected %s (it travels in URLs and a cookie); %s"
                        % (where, " and ".join(problems), TOKEN_RULE, GENERATE))
    return token
