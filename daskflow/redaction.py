"""Secrets out of what daskflow stores and prints.

A URL may carry credentials: a password in its user info
(``https://alice:PW@host/x``) or a signature, token or key in its query
(presigned ``?X-Amz-Signature=...``, ``?sig=...``, ``?token=...``). Provenance,
the staging cache's records, logs and error messages must not keep them in
clear, since other users of a shared machine may read them. Everything daskflow
writes about a URL goes through :func:`redact_url` (a URL) or
:func:`redact_text` (free text with URLs in it); each secret becomes ``***``.
The user name and the rest of the URL stay, so a record still says which
object was meant.

Call arguments are another kind of secret (``password="..."``): provenance
keeps a keyed digest of them (``signing.arguments_digest``) unless the user asks
for the text.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger("daskflow")

__all__ = ["MASK", "SECRET_PARAMETERS", "is_secret_parameter", "redact_batch", "redact_text",
           "redact_url"]

MASK = "***"

# Query (and fragment) parameters whose values are secrets, compared in lower case.
SECRET_PARAMETERS = frozenset((
    "sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "x-goog-signature", "x-goog-credential", "x-goog-security-token", "token", "access_token",
    "refresh_token", "id_token", "auth", "authorization", "key", "api_key", "apikey", "api-key",
    "access_key", "accesskey", "secret", "client_secret", "password", "passwd", "pwd", "policy",
    "key-pair-id",
))
# ... and any parameter whose name contains one of these.
SECRET_PARTS = ("signature", "token", "secret", "password", "passwd", "credential", "apikey",
                "api_key", "api-key", "private")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# A URL with a scheme inside free text: up to white space, quotes or angle brackets.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
# A query or fragment parameter anywhere in free text (also without a scheme:
# "GET /x?sig=...", or a URL cut by a message).
_PARAM_IN_TEXT = re.compile(r"(?<=[?&;#])([A-Za-z0-9_.~%-]+)=([^&;#\s'\"<>`)\]}]*)")
# "user:password@host" without a scheme (scp-like), at the start of a URL given alone.
_BARE_USERINFO = re.compile(r"^([^\s/?#@:]+):([^\s/?#]*)@(?=[^\s/?#@]+)")


def is_secret_parameter(name: str) -> bool:
    """Whether the value of query parameter ``name`` is a secret (case-insensitive;
    percent-encoded names are decoded first)."""
    from urllib.parse import unquote

    lowered = unquote(name).lower()
    return lowered in SECRET_PARAMETERS or any(part in lowered for part in SECRET_PARTS)


def _redact_params(text: str) -> str:
    """``name=value`` pairs separated by ``&`` or ``;``: secret values masked."""
    def one(pair: str) -> str:
        name, eq, value = pair.partition("=")
        if eq and value and is_secret_parameter(name):
            return f"{name}={MASK}"
        return pair

    return re.sub(r"[^&;]+", lambda m: one(m.group(0)), text)


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``.

    The user name stays. Works on URLs without a scheme (``host/x?sig=...``,
    ``alice:pw@host:/path``), IPv6 hosts (``http://u:pw@[::1]:80/``),
    percent-encoded passwords and passwords holding a raw ``@`` (everything
    before the last ``@`` of the authority is user info). Anything that is not
    a string is returned as it is.

    Examples
    --------
    >>> redact_url("https://alice:s3cret@example.org/data.csv?X-Amz-Signature=abc&v=2")
    'https://alice:***@example.org/data.csv?X-Amz-Signature=***&v=2'
    """
    if not isinstance(url, str) or ("@" not in url and "=" not in url):
        return url  # the fast path: nothing that could hold a secret
    rest = url
    head = ""
    scheme = _SCHEME.match(rest)
    if scheme and rest[scheme.end():scheme.end() + 2] == "//":
        head, rest = rest[:scheme.end() + 2], rest[scheme.end() + 2:]
        cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority, rest = rest[:cut], rest[cut:]
        userinfo, at, host = authority.rpartition("@")
        if not at and "@" in rest.split("?", 1)[0].split("#", 1)[0]:
            # "user:pa/ss@host": a raw "/" in the password cut the authority short;
            # a port that is not a number says so
            name, colon, port = authority.partition(":")
            if colon and not authority.startswith("[") and not port.isdigit():
                userinfo, at, rest = rest.partition("@")
                userinfo = authority + userinfo
                cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
                host, rest = rest[:cut], rest[cut:]
        if at:
            user, colon, _password = userinfo.partition(":")
            authority = f"{user}:{MASK}@{host}" if colon else f"{user}@{host}"
        head += authority
    elif not scheme or "@" in rest.split("/", 1)[0]:
        bare = _BARE_USERINFO.match(rest)
        if bare:
            head, rest = f"{bare.group(1)}:{MASK}@", rest[bare.end():]
    path, hashmark, fragment = rest.partition("#")
    path, question, query = path.partition("?")
    if question:
        query = _redact_params(query)
    if hashmark and "=" in fragment:
        fragment = _redact_params(fragment)
    return f"{head}{path}{question}{query}{hashmark}{fragment}"


def _strip_trailing(url: str) -> tuple[str, str]:
    """A URL found in prose and the punctuation that ends the sentence around it."""
    end = len(url)
    while end and url[end - 1] in ".,;:!)]}":
        if url[end - 1] in ")]}" and url.count({")": "(", "]": "[", "}": "{"}[url[end - 1]],
                                                0, end) >= url.count(url[end - 1], 0, end):
            break  # a bracket that belongs to the URL (an IPv6 host, a path)
        end -= 1
    return url[:end], url[end:]


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (see :func:`redact_url`), and any
    secret query parameter (``?sig=...``, ``&token=...``) masked even where no
    scheme precedes it. Anything that is not a string is returned as it is.

    Examples
    --------
    >>> redact_text("could not fetch ftp://bob:pw@h/x (and s3://b/k?token=t).")
    'could not fetch ftp://bob:***@h/x (and s3://b/k?token=***).'
    """
    if not isinstance(text, str) or ("@" not in text and "=" not in text):
        return text

    def url(match: re.Match) -> str:
        found, tail = _strip_trailing(match.group(0))
        return redact_url(found) + tail

    text = _URL_IN_TEXT.sub(url, text)
    if "=" in text:
        text = _PARAM_IN_TEXT.sub(
            lambda m: f"{m.group(1)}={MASK}" if m.group(2) and not m.group(2).startswith(MASK)
            and is_secret_parameter(m.group(1)) else m.group(0), text)
    return text


def redact_batch(batch: dict[str, list]) -> dict[str, list]:
    """Redact a provenance batch (``plugin._to_batch``) in place and return it.

    Every text value of its rows (dicts: tasks, updates, tries, files) goes
    through :func:`redact_text`, File URLs through :func:`redact_url`: task
    arguments, exception texts and tracebacks, stream paths, URLs. The tuples
    (dependencies, transitions) hold keys, states, times and worker addresses
    only. A text without ``@`` or ``=`` costs one scan; the fields daskflow
    itself names (``STRUCTURAL``: keys, app names, states, worker
    addresses) are not scanned.
    """
    for rows in batch.values():
        for row in rows:
            if type(row) is not dict:
                continue
            for name, value in row.items():
                if name in STRUCTURAL or value is None:
                    continue
                if type(value) is str:
                    if "@" in value or "=" in value:
                        row[name] = redact_url(value) if name == "url" else redact_text(value)
                elif isinstance(value, BaseException):
                    row[name] = redact_text(f"{type(value).__name__}: {value}")
    return batch


# fields of provenance rows whose values daskflow makes, never from the user's data
STRUCTURAL = frozenset({"key", "tid", "app", "app_hash", "chunk_key", "index", "state",
                        "worker", "host", "submitted", "started", "finished", "tries",
                        "exit_code", "memo", "direction", "size", "checksum", "try",
                        "start", "end", "nbytes"})
