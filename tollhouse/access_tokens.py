"""Access tokens (the dashboard's, the operator's): random, in 0600 files under $TOLLHOUSE_HOME."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path


def ensure_token(path: Path) -> str:
    """The token in ``path``, created (0600, in a 0700 directory) when there is none."""
    try:
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def same(given: str | None, token: str) -> bool:
    """Constant-time comparison, so the token can't be guessed byte by byte."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
