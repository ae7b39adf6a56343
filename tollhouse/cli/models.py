"""``tollhouse models`` and the live half of ``report --capacity``: talking to the gateway.

Health state lives in the running gateway (and, with several instances, in
the shared Redis store it writes through): the CLI asks the gateway, never
the store, so one door with one operator token guards it.

>>> # reset_model("http://127.0.0.1:4141", token, "openai", "gpt-4o")
>>> # {'provider': 'openai', 'model': 'gpt-4o', 'cleared': True}
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from tollhouse.ledger.report import CAPACITY_COLUMNS

EJECTION_COLUMNS = ("ejected", "ejected_since", "ejected_until")
ALL_MODELS = "*"
"""The model column of a provider-wide ejection."""


class GatewayUnreachable(Exception):
    """No gateway answered at the URL."""


def parse_target(target: str) -> tuple[str, str | None]:
    """``openai/gpt-4o`` -> ("openai", "gpt-4o"); ``openai`` -> ("openai", None) (the provider).

    The model keeps any further slashes (``openrouter/meta-llama/llama-3``).
    """
    provider, _, model = target.strip().partition("/")
    if not provider:
        raise ValueError(f"{target!r}: give PROVIDER/MODEL (e.g. openai/gpt-4o) or PROVIDER")
    return provider, model or None


def reset_model(url: str, token: str, provider: str, model: str | None) -> dict[str, Any]:
    body = json.dumps({"provider": provider, **({"model": model} if model else {})}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/tollhouse/v1/models/reset",
        data=body,
        headers={"Content-Type": "application/json", "X-Tollhouse-Operator": token},
        method="POST",
    )
    return _call(request, url)


def block_model(
    url: str, token: str, provider: str, model: str | None, *, reason: str = "", lift: bool
) -> dict[str, Any]:
    """Block (or, ``lift``, unblock) PROVIDER/MODEL on the gateway and every instance."""
    body: dict[str, Any] = {"provider": provider, **({"model": model} if model else {})}
    if not lift:
        body |= {"reason": reason, "by": "operator (tollhouse models block)"}
    request = urllib.request.Request(
        f"{url.rstrip('/')}/tollhouse/v1/models/{'unblock' if lift else 'block'}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Tollhouse-Operator": token},
        method="POST",
    )
    return _call(request, url)


def live_blocks(url: str, timeout: float = 3.0) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{url.rstrip('/')}/tollhouse/v1/models/blocks")
    return list(_call(request, url, timeout).get("blocks", []))


def live_ejections(url: str, timeout: float = 3.0) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{url.rstrip('/')}/tollhouse/v1/models/ejections")
    found = _call(request, url, timeout)
    return list(found.get("ejections", []))


def _call(request: urllib.request.Request, url: str, timeout: float = 30.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as err:
        try:
            message = str(json.loads(err.read())["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = f"{url} answered {err.code}"
        raise RuntimeError(message) from None
    except (urllib.error.URLError, OSError) as err:
        raise GatewayUnreachable(f"no gateway at {url} ({err})") from None


def merge(rows: list[dict[str, Any]], ejections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger's per-model rows, each with its live ejection (or its provider's); an
    ejected deployment with no attempts in the window gets a row of its own."""
    by_key = {(e["provider"], e["model"] or ALL_MODELS): e for e in ejections}
    out = []
    for row in rows:
        found = by_key.pop((row["provider"], row["model"]), None)
        found = found or by_key.get((row["provider"], ALL_MODELS))
        out.append({**row, **_columns(found)})
    empty = dict.fromkeys(CAPACITY_COLUMNS, 0)
    for (provider, model), e in sorted(by_key.items()):
        out.append({"provider": provider, "model": model, **empty, **_columns(e)})
    return out


def _columns(e: dict[str, Any] | None) -> dict[str, Any]:
    if e is None:
        return dict.fromkeys(EJECTION_COLUMNS)
    return {
        "ejected": e["reason"] or e["state"],
        "ejected_since": _iso(e.get("since")),
        "ejected_until": _iso(e.get("until")),
    }


def _iso(epoch: float | None) -> str | None:
    return (
        None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
    )
