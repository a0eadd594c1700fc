"""``parsl.addresses``: ways to find this machine's address, for
``HighThroughputExecutor(address=...)`` (daskflow's scheduler listens there)."""

from __future__ import annotations

import fcntl
import logging
import platform
import socket
import struct
import urllib.request

import psutil

logger = logging.getLogger("daskflow")


def address_by_route() -> str:
    """The address of the route to the internet (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("8.8.8.8", 80))
        return s.getsockname()[0]


def address_by_query(timeout: float = 30) -> str:
    """The internet-facing address, as a public service sees it."""
    with urllib.request.urlopen("https://api.ipify.org", timeout=timeout) as response:
        return response.read().decode().strip()


def address_by_hostname() -> str:
    """The address this machine's host name resolves to."""
    return socket.gethostbyname(platform.node())


def address_by_interface(ifname: str) -> str:
    """The IPv4 address of network interface ``ifname`` (such as ``eth0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = fcntl.ioctl(s.fileno(), 0x8915,  # SIOCGIFADDR
                             struct.pack("256s", ifname[:15].encode()))
    return socket.inet_ntoa(packed[20:24])


def get_all_addresses() -> set[str]:
    """Every address the other functions find (those that fail are skipped)."""
    found = set()
    finders = [lambda i=i: address_by_interface(i) for i in psutil.net_if_addrs()]
    for finder in finders + [address_by_hostname, address_by_route, address_by_query]:
        try:
            found.add(finder())
        except Exception:
            logger.debug("an address finder failed", exc_info=True)
    return found


def get_any_address() -> str:
    """One address of this machine."""
    for finder in (address_by_hostname, address_by_route):
        try:
            return finder()
        except Exception:
            continue
    raise OSError("Cannot find address of the local machine.")


__all__ = ["address_by_hostname", "address_by_interface", "address_by_query",
           "address_by_route", "get_all_addresses", "get_any_address"]
