"""``parsl.channels``: removed from Parsl in 2024, still imported by older
scripts. Accepted with a one-time warning; only ``AdHocProvider`` reads
them (an ``SSHChannel`` gives an ssh pool its host)."""

from __future__ import annotations

import warnings

from ..errors import CompatibilityWarning
from ..holders import REQUIRED, Holder

_warned = False


class Channel(Holder):
    """A channel: accepted, with the warning below once per process."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        global _warned
        if not _warned:
            _warned = True
            warnings.warn(
                "parsl.channels was removed from Parsl in 2024; daskflow accepts "
                f"{type(self).__name__} for older scripts: LocalChannel changes nothing, and an "
                "SSHChannel is read only by AdHocProvider (its host, user and port)",
                CompatibilityWarning, stacklevel=2)


class LocalChannel(Channel):
    keywords = {"userhome": ".", "envs": {}, "script_dir": None}


class SSHChannel(Channel):
    keywords = {"hostname": REQUIRED, "username": None, "password": None, "script_dir": None,
                "envs": None, "gssapi_auth": False, "skip_auth": False, "port": 22,
                "key_filename": None, "host_keys_filename": None}


class SSHInteractiveLoginChannel(SSHChannel):
    keywords = {"hostname": REQUIRED, "username": None, "password": None, "script_dir": None,
                "envs": None}


class OAuthSSHChannel(SSHChannel):
    keywords = {"hostname": REQUIRED, "username": None, "script_dir": None, "envs": None,
                "port": 22}


__all__ = ["LocalChannel", "OAuthSSHChannel", "SSHChannel", "SSHInteractiveLoginChannel"]
