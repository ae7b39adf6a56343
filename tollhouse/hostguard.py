"""The DNS-rebinding guard: which Host headers may reach a tollhouse listener.

One check for the gateway port and the dashboard port alike.

>>> host_allowed("127.0.0.1:4141", LOCAL_NAMES)
True
>>> host_allowed("attacker.example", LOCAL_NAMES)
False
"""

from __future__ import annotations

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Whether a Host header's name (its port aside) is one of ``allowed``."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in allowed
