"""tollhouse's own request headers: a typo is said back, not silently ignored.

``X-Tollhouse-Projet: acme`` would charge the call to the wrong project and
nobody would know. A header under ``X-Tollhouse-`` that is a letter or two off
one tollhouse reads is a 400 naming the right one; any other unknown one is
let through with a warning header (a client newer than this gateway).

>>> check_own_headers({"X-Tollhouse-Projet": "acme"})  # BadRequest: did you mean ...?
>>> check_own_headers({"X-Tollhouse-Newer-Feature": "1"})
'ignored unknown header(s) X-Tollhouse-Newer-Feature'
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from tollhouse.errors import BadRequest

PREFIX = "x-tollhouse-"
TAG_PREFIX = "x-tollhouse-tag-"
# Every request header tollhouse reads (tests/ingress/test_headers.py checks the
# package defines no other). Responses' own headers are not requests'.
REQUEST_HEADERS = (
    "X-Tollhouse-Project",
    "X-Tollhouse-Task",
    "X-Tollhouse-Step",
    "X-Tollhouse-Inputs",
    "X-Tollhouse-Cache",
    "X-Tollhouse-Assumes",
    "X-Tollhouse-Deadline-Ms",
    "X-Tollhouse-Operator",
    "X-Tollhouse-Fusion-Depth",
)
_KNOWN = {h.lower(): h for h in REQUEST_HEADERS}
WARNING_HEADER = "X-Tollhouse-Warning"


def check_own_headers(headers: Mapping[str, str]) -> str | None:
    """BadRequest for a near-typo of a tollhouse header; a warning (or None) otherwise."""
    unknown = []
    for name in headers:
        lower = name.lower()
        if not lower.startswith(PREFIX) or lower in _KNOWN or lower.startswith(TAG_PREFIX):
            continue
        near = difflib.get_close_matches(lower, _KNOWN, n=1, cutoff=0.85)
        if near:
            raise BadRequest(
                f"unknown header {name[:80]}: did you mean {_KNOWN[near[0]]}? "
                "(tollhouse would otherwise ignore it)"
            )
        unknown.append(name[:80])
    if not unknown:
        return None
    return "ignored unknown header(s) " + ", ".join(sorted(unknown)[:5])
