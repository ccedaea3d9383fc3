"""Mask credentials in URLs: the one helper for every URL that is printed, logged or stored.

A URL can carry secrets in three places: its userinfo (``http://alice:PASSWORD@host/``), its
query (``?X-Amz-Signature=...``, ``?token=...``) and its fragment (``#access_token=...``, as
OAuth's implicit flow returns it). :func:`mask_url` replaces each with ``***``; :func:`mask_text`
does it for every URL inside a message (an error, a log line, a CSV cell), and also for secret
parameters of a URL printed without its scheme and host (as ``requests`` does: ``Max retries
exceeded with url: /x.zip?token=...``).
:func:`url_credentials` says which secrets a URL carries, for the places that refuse them
(``params.yaml``, the DVC remote's endpoint), since credentials belong in the environment,
``~/.netrc`` or the AWS files.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

MASK = "***"

# A URL in running text: scheme://, then anything up to white space or a quote/bracket that
# ends it in prose, JSON or repr() output.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)")
# name=value after ? or & (a query, whether or not the URL around it is complete), or after #
# (a fragment: OAuth's implicit flow returns ``#access_token=...&token_type=bearer``).
# A value already masked keeps the punctuation after it: masking a masked line again (a log
# filter over a message that holds a masked URL) must not eat the ")" or ";" that follows.
_QUERY_PARAM = re.compile(
    r"(?P<lead>[?&;#])(?P<name>[^=&#\s'\"<>]+)="
    r"(?P<value>\*\*\*(?=[);,.]|$)|[^&#\s'\"<>`]*)"
)
# Parameter names that carry secrets: AWS/GCS/Azure signed URLs (X-Amz-Signature,
# X-Amz-Security-Token, X-Goog-Signature, sig), tokens (access_token, id_token, private_token),
# passwords and passphrases, API, access and private keys, JWTs, HMACs.
_SECRET_PARAM = re.compile(
    r"token|secret|passw(?:or)?d|passphrase|signature|credential|api[-_]?key|access[-_]?key"
    r"|private[-_]?key|jwt|hmac|^(?:sig|pwd|pass|key|auth|authorization)$",
    re.IGNORECASE,
)


def _secret_param(name: str) -> bool:
    return bool(_SECRET_PARAM.search(unquote(name)))


def _mask_query(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        if not match["value"] or not _secret_param(match["name"]):
            return match[0]
        return f"{match['lead']}{match['name']}={MASK}"

    return _QUERY_PARAM.sub(repl, text)


def mask_url(url: str) -> str:
    """``url`` with its userinfo and secret-looking query values replaced by ``***``.

    Args:
        url: any URL (``http://alice:pw@host/x.zip?token=t``) or any other string.

    Returns:
        ``http://***@host/x.zip?token=***``; a URL without secrets (or a string that is not a
        URL) comes back unchanged, character for character.
    """
    match = _AUTHORITY.match(url)
    if match is not None and "@" in match["authority"]:
        host = match["authority"].rpartition("@")[2]
        url = f"{match['scheme']}{MASK}@{host}{url[match.end() :]}"
    return _mask_query(url)


def mask_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`mask_url`.

    Secret query parameters are masked even where a message shows only a URL's path and query.

    Args:
        text: an error message, a log line, a traceback, a CSV cell.

    Returns:
        The text with credentials replaced by ``***``; unchanged when it holds none.
    """
    return _mask_query(_URL.sub(lambda m: mask_url(m[0]), text))


def url_credentials(url: str) -> list[str]:
    """What credentials ``url`` carries, to name them in a refusal.

    Returns:
        ``["user:password@"]`` for userinfo, ``"query parameter 'NAME'"`` (``"fragment
        parameter 'NAME'"`` after ``#``) for each secret-looking parameter with a value; empty
        when the URL carries none.
    """
    found: list[str] = []
    match = _AUTHORITY.match(url)
    if match is not None and "@" in match["authority"]:
        found.append("user:password@")
    for param in _QUERY_PARAM.finditer(url):
        if param["value"] and _secret_param(param["name"]):
            part = "fragment" if "#" in url[: param.start() + 1] else "query"
            found.append(f"{part} parameter {unquote(param['name'])!r}")
    return found


def text_credentials(text: str) -> list[str]:
    """:func:`url_credentials` of every URL in ``text`` (e.g. a ``key=value`` override)."""
    return [found for url in _URL.findall(text) for found in url_credentials(url)]


class MaskingFilter(logging.Filter):
    """A logging filter that passes every record's message through :func:`mask_text`.

    Attach it to a handler (``handler.addFilter(MaskingFilter())``) so that no URL credential
    reaches the log, whichever library logged it. Exception tracebacks attached to a record are
    masked too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place (message and traceback masked); always keep it."""
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True
