"""What a fused request is: its panel, judge and writer, each as routes to try.

Sans-io. A fused model comes from config (``[models.NAME] panel = [...]``,
``judge``, optional ``writer``) or from OpenRouter's request shape:
``model: "fusion"`` (or a configured fused name) with ``"models": [...]``
choosing the panel; without a configured ``[models.fusion]`` the first model
listed judges and writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tollhouse.errors import BadRequest
from tollhouse.fusion.prompts import JUDGE_MAX_TOKENS, PROMPT_TOKENS
from tollhouse.gateway.models import Route

FUSION_MODEL = "fusion"  # OpenRouter's name; "openrouter/fusion" stays OpenRouter's
DEPTH_HEADER = "X-Tollhouse-Fusion-Depth"
MAX_PANEL = 8
ROLES = ("panel", "judge", "writer")


@dataclass(frozen=True, slots=True)
class Panel:
    """A fused model as configured: model names, not yet routes."""

    members: tuple[str, ...]
    judge: str
    writer: str = ""  # "": the judge writes
    member_timeout_s: float = 120.0

    @property
    def author(self) -> str:
        return self.writer or self.judge


@dataclass(frozen=True, slots=True)
class FusionPlan:
    """A fused request's routes: each panel member's candidates, the judge's, the writer's."""

    name: str  # the model the client asked for
    members: tuple[str, ...]
    panel: tuple[list[Route], ...]
    judge: list[Route]
    writer: list[Route]
    member_timeout_s: float

    def all_routes(self) -> list[list[Route]]:
        return [*self.panel, self.judge, self.writer]

    def stages(self) -> list[tuple[list[list[Route]], int | None, int]]:
        """The fan-out as a hard budget holds it (BudgetGate.reserve_fan_out): the panel
        in parallel, then the judge (its own output cap), then the writer; the judge's
        and writer's prompts add their brief and every answer shown (the earlier
        stages' output bounds cover those)."""
        return [
            (list(self.panel), None, 0),
            ([self.judge], JUDGE_MAX_TOKENS, PROMPT_TOKENS),
            ([self.writer], None, PROMPT_TOKENS),
        ]


def chosen_panel(
    model: str, payload: Mapping[str, Any], panels: Mapping[str, Panel]
) -> Panel | None:
    """The panel a request asks for, or None when ``model`` is not a fused model."""
    configured = panels.get(model)
    if configured is None and model != FUSION_MODEL:
        return None
    listed = payload.get("models")
    if listed is None:
        if configured is None:
            raise BadRequest(
                'model "fusion": list the panel in "models": [...] (two or more models), '
                "or configure [models.fusion] with a panel and a judge"
            )
        return configured
    if (
        not isinstance(listed, list)
        or not listed
        or len(listed) > MAX_PANEL
        or not all(isinstance(m, str) and m for m in listed)
    ):
        raise BadRequest(f'"models": a list of 1 to {MAX_PANEL} model names, the panel to ask')
    nested = [m for m in listed if m in panels or m == FUSION_MODEL]
    if nested:
        raise BadRequest(
            f'"models": {nested[0]!r} is a fused model itself; fused models don\'t nest'
        )
    members = tuple(listed)
    if configured is None:
        return Panel(members, judge=members[0])
    return Panel(members, configured.judge, configured.writer, configured.member_timeout_s)


def check_depth(headers: Mapping[str, str]) -> None:
    """A fused request made by a fused model (through another gateway) is refused."""
    raw = headers.get(DEPTH_HEADER)
    if raw is not None and raw.strip() not in ("", "0"):
        raise BadRequest(
            f"{DEPTH_HEADER}: {raw.strip()[:20]!r}: this request comes from inside a fused "
            "model; fused models don't nest (ask a plain model instead)"
        )
