"""daskflow.redaction: URL passwords and signed query strings never in clear."""

from __future__ import annotations

import pytest

from daskflow import File
from daskflow.redaction import is_secret_parameter, redact_batch, redact_text, redact_url
from daskflow.signing import arguments_digest


@pytest.mark.parametrize("url, expected", [
    ("https://alice:s3cret@example.org/data.csv", "https://alice:***@example.org/data.csv"),
    ("https://alice@example.org/x", "https://alice@example.org/x"),  # a user name may stay
    ("ftp://bob:pw@ftp.example.org:2121/pub/x", "ftp://bob:***@ftp.example.org:2121/pub/x"),
    ("http://alice:p%40ss%2Fw@h/x", "http://alice:***@h/x"),  # percent-encoded
    ("http://alice:p@ss@h/x", "http://alice:***@h/x"),  # a raw "@" in the password
    ("http://alice:pa/ss@h/x?q=1", "http://alice:***@h/x?q=1"),  # a raw "/" in it
    ("http://alice:pw@[::1]:8080/x", "http://alice:***@[::1]:8080/x"),  # IPv6 host
    ("http://[2001:db8::1]/x?sig=abc", "http://[2001:db8::1]/x?sig=***"),
    ("http://host:8080/users/bob@example.org", "http://host:8080/users/bob@example.org"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F2024"
     "&X-Amz-Signature=abcdef&X-Amz-Security-Token=tok&x-id=GetObject",
     "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=***"
     "&X-Amz-Signature=***&X-Amz-Security-Token=***&x-id=GetObject"),
    ("https://storage.googleapis.com/b/o?X-Goog-Signature=ff&X-Goog-Date=1",
     "https://storage.googleapis.com/b/o?X-Goog-Signature=***&X-Goog-Date=1"),
    ("https://acct.blob.core.windows.net/c/b?sv=2020&sig=AbC%3D&se=2030",
     "https://acct.blob.core.windows.net/c/b?sv=2020&sig=***&se=2030"),
    ("https://cdn.example.org/x?Policy=p&Signature=s&Key-Pair-Id=K",
     "https://cdn.example.org/x?Policy=***&Signature=***&Key-Pair-Id=***"),
    ("https://h/x?TOKEN=a;api_key=b&page=2", "https://h/x?TOKEN=***;api_key=***&page=2"),
    ("https://h/x?my_access_token=a&sessionSecret=b", "https://h/x?my_access_token=***&sessionSecret=***"),
    ("https://h/cb#access_token=abc&state=1", "https://h/cb#access_token=***&state=1"),
    ("https://h/x?token=", "https://h/x?token="),  # nothing to hide
    ("host.example.org/x?token=abc", "host.example.org/x?token=***"),  # no scheme
    ("alice:pw@host.example.org:/data/x", "alice:***@host.example.org:/data/x"),  # scp-like
    ("/local/path/x.csv", "/local/path/x.csv"),
    ("s3://bucket/key=value/part-0", "s3://bucket/key=value/part-0"),  # "=" in a path
    ("", ""),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected
    assert redact_url(expected) == expected  # idempotent


def test_not_a_string_is_returned_as_it_is():
    assert redact_url(None) is None and redact_text(3) == 3


def test_secret_parameter_names():
    for name in ("sig", "SIG", "Signature", "x-amz-signature", "X-Amz-Credential", "token",
                 "access_token", "key", "API_KEY", "password", "secret", "policy",
                 "Key-Pair-Id", "X%2DAmz%2DSignature", "refresh_token", "client_secret"):
        assert is_secret_parameter(name), name
    for name in ("v", "page", "x-id", "sv", "se", "X-Amz-Date", "X-Amz-Expires", "prefix",
                 "monkey"):
        assert not is_secret_parameter(name), name


def test_redact_text_finds_several_urls_and_keeps_the_prose():
    text = ("could not fetch ftp://bob:pw1@h/x (and s3://b/k?token=t2). "
            "GET /x?sig=q3&y=1 failed; see <File http://a:pw4@h/y> and "
            "[http://u:pw5@[::1]:80/z], 'https://c:pw6@h/q?X-Amz-Signature=s7'")
    out = redact_text(text)
    for secret in ("pw1", "t2", "q3", "pw4", "pw5", "pw6", "s7"):
        assert secret not in out, (secret, out)
    assert out == ("could not fetch ftp://bob:***@h/x (and s3://b/k?token=***). "
                   "GET /x?sig=***&y=1 failed; see <File http://a:***@h/y> and "
                   "[http://u:***@[::1]:80/z], 'https://c:***@h/q?X-Amz-Signature=***'")
    assert redact_text(out) == out


def test_redact_text_leaves_plain_text_alone():
    for text in ("nothing here", "x = 1", "alice@example.org wrote", "a==b", "key: value"):
        assert redact_text(text) == text


def test_a_traceback_is_redacted_line_by_line():
    tb = ('Traceback (most recent call last):\n  File "x.py", line 3, in f\n'
          '    raise OSError(url)\nOSError: https://alice:hunter2@h/data?sig=zzz\n')
    out = redact_text(tb)
    assert "hunter2" not in out and "zzz" not in out and out.count("\n") == tb.count("\n")


def test_file_repr_is_redacted_but_the_url_is_kept():
    f = File("https://alice:hunter2@h/data.csv?sig=zzz")
    assert repr(f) == "<File https://alice:***@h/data.csv?sig=***>"
    assert f.url == "https://alice:hunter2@h/data.csv?sig=zzz"  # the mover needs it


def test_redact_batch_covers_every_text_field_in_place():
    batch = {
        "tasks": [{"key": "k", "tid": "1", "args": "(<File http://a:pw@h/x>,)", "submitted": 1.0}],
        "updates": [{"key": "k", "exception": "OSError: http://a:pw@h/x?sig=s",
                     "traceback": "... http://a:pw@h/x ...", "stderr": "/tmp/e?token=t"}],
        "tries": [{"key": "k", "try": 1, "exception": ValueError("ftp://u:pw@h/y")}],
        "files": [{"key": "k", "direction": "in", "url": "http://a:pw@h/x?sig=s", "size": 3}],
        "deps": [("k", "j")], "transitions": [("k", "waiting", "processing", 1.0, "tcp://w:1")],
    }
    out = redact_batch(batch)
    assert out is batch
    text = repr(out)
    assert "pw" not in text and "sig=s" not in text and "token=t" not in text
    assert out["files"][0]["url"] == "http://a:***@h/x?sig=***"
    assert out["tries"][0]["exception"] == "ValueError: ftp://u:***@h/y"
    assert out["deps"] == [("k", "j")] and out["files"][0]["size"] == 3


def test_argument_digests_are_keyed_stable_and_distinct():
    import hashlib

    a = arguments_digest("(('alice',), {'password': 'hunter2'})")
    assert a.startswith("hmac-sha256:") and len(a) == len("hmac-sha256:") + 16
    assert a == arguments_digest("(('alice',), {'password': 'hunter2'})")
    assert a != arguments_digest("(('alice',), {'password': 'hunter3'})")
    plain = hashlib.sha256(b"(('alice',), {'password': 'hunter2'})").hexdigest()
    assert plain[:16] not in a  # not a plain hash anyone could test guesses against


def test_missing_file_errors_name_urls_without_their_secrets():
    from daskflow.errors import MissingInputs

    text = str(MissingInputs("fetch", 3, ["https://alice:s3cret@host/x.csv?sig=abc"]))
    assert "s3cret" not in text and "abc" not in text
    assert "https://alice:***@host/x.csv?sig=***" in text
