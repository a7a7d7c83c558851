"""Loaded by every Python process whose PYTHONPATH holds this folder (the Airflow services
of tests/test_airflow_scheduler.py and their tasks): a connection or a name lookup for
anything but this machine is refused and written to $CXKPI_NETGUARD_LOG, so a test can
assert that nothing tried to leave the machine (telemetry, version checks, downloads)."""

from __future__ import annotations

import os
import socket

_LOG = os.environ.get("CXKPI_NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", socket.gethostname()}


def _is_local(host: object) -> bool:
    text = str(host or "")
    return text in _LOCAL_NAMES or text.startswith(("127.", "::ffff:127."))


def _refuse(what: str, host: object) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {what} {host}\n")
    raise OSError(f"network blocked by tests/netguard: {what} {host}")


_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _is_local(host):
        _refuse("lookup", host)
    return _getaddrinfo(host, *args, **kwargs)


def _checked(self, address):  # type: ignore[no-untyped-def]
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refuse("connect", address[0])


def connect(self, address):  # type: ignore[no-untyped-def]
    _checked(self, address)
    return _connect(self, address)


def connect_ex(self, address):  # type: ignore[no-untyped-def]
    _checked(self, address)
    return _connect_ex(self, address)


if _LOG:
    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
