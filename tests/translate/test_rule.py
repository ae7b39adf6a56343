"""The rule as a property (issue 16): whatever sampling knobs and reasoning a client
sets, for any model in the capability table, each one either reaches the target
(read back from the body the target gets) or is named in the omissions."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tollhouse.translate import CODECS
from tollhouse.translate.capabilities import _TABLE, EFFORTS
from tollhouse.translate.model import Message, Reasoning, Request, Text

KNOBS = {
    "temperature": st.floats(0, 1, allow_nan=False),
    "top_p": st.floats(0.5, 1, allow_nan=False),
    "top_k": st.integers(1, 100),
    "seed": st.integers(0, 10_000),
    "presence_penalty": st.floats(-1, 1, allow_nan=False),
    "frequency_penalty": st.floats(-1, 1, allow_nan=False),
}
MODELS = [
    (d, f"{prefix}-x" if prefix else "unknown") for d, rows in _TABLE.items() for prefix in rows
]


@given(
    knobs=st.fixed_dictionaries({}, optional=KNOBS),
    effort=st.none() | st.sampled_from(EFFORTS),
    target=st.sampled_from(MODELS),
)
def test_every_knob_arrives_or_is_named(
    knobs: dict[str, Any], effort: str | None, target: tuple[str, str]
) -> None:
    dialect, model = target
    reasoning = Reasoning(effort=effort) if effort else None
    request = Request([Message("user", [Text("hi")])], reasoning=reasoning, **knobs)
    body = CODECS[dialect].encode_request(request, model=model, stream=False)
    back = CODECS[dialect].decode_request(body)
    named = " ".join(request.omitted)
    for knob, value in knobs.items():
        assert getattr(back, knob) == value or f"{knob} (" in named, (knob, request.omitted)
    if effort is not None and effort != "none" and back.reasoning is None:
        assert "reason" in named or "think" in named, request.omitted
    if effort == "none" and back.reasoning not in (None, Reasoning(effort="none")):
        assert "reasoning none" in named or "sent as" in named, (back.reasoning, named)
