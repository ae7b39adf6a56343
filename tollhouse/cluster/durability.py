"""Whether the shared Redis keeps what the trust state needs across its restart.

Trajectories (taint) and idempotency claims live in Redis as the source of
truth. A Redis that restarts without persistence comes back empty: taint is
gone (the gate allows what it should hold) and a claimed key can be claimed
again (a second 201: the side effect runs twice). A Redis under a
``maxmemory`` limit with an evicting policy drops keys the same way, and
every trust key has a TTL, so ``volatile-*`` policies evict them too.

So the gateway requires ``appendonly yes`` and, with a ``maxmemory`` limit,
``maxmemory-policy noeviction``, and checks both at start (``CONFIG GET``),
logging a warning that says what to set when they are missing or can't be
read (a managed Redis may refuse ``CONFIG``). :func:`persistence_warnings`
judges a configuration; :func:`check_persistence` reads it.

>>> persistence_warnings({"appendonly": "no"})[0][:40]
'Redis does not persist what it is told ('
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from tollhouse.cluster.client import DOWN_ERRORS, RedisState, decode

log = logging.getLogger("tollhouse.cluster")

SETTINGS = ("appendonly", "maxmemory", "maxmemory-policy")
FIX = (
    "set `appendonly yes` and `maxmemory-policy noeviction` in redis.conf "
    "(README: Run several instances)"
)


def persistence_warnings(config: Mapping[str, str]) -> list[str]:
    """What is wrong with a Redis ``config`` (``CONFIG GET`` answers) for the trust state."""
    warnings = []
    if config.get("appendonly", "no").lower() != "yes":
        warnings.append(
            "Redis does not persist what it is told (appendonly is "
            f"{config.get('appendonly', 'unset')!r}): a Redis restart erases trajectories "
            "(taint: the gate would allow what it should hold) and idempotency claims (a "
            f"claimed key could be claimed again and its side effect run twice); {FIX}"
        )
    policy = config.get("maxmemory-policy", "noeviction").lower()
    if config.get("maxmemory", "0") != "0" and policy != "noeviction":
        warnings.append(
            f"Redis evicts keys when full (maxmemory-policy {policy!r}): trajectories and "
            f"idempotency claims could be dropped under memory pressure; {FIX}"
        )
    return warnings


async def check_persistence(state: RedisState) -> list[str]:
    """Read Redis's configuration and log (and return) what it lacks; never raises.

    Asked of the client directly, not through :meth:`RedisState.run`: a Redis that
    refuses ``CONFIG`` (a managed one may) is not down.
    """
    try:
        config: dict[str, str] = {}
        for name in SETTINGS:
            answer = await state.client.config_get(name)
            config.update({decode(k): decode(v) for k, v in answer.items()})
    except DOWN_ERRORS as exc:
        warnings = [f"can't check Redis's persistence ({type(exc).__name__}: {exc}); {FIX}"]
    else:
        warnings = persistence_warnings(config)
    for warning in warnings:
        log.warning("shared state: %s", warning)
    return warnings
