"""Fusion: a panel of models asked in parallel, a judge comparing their answers, a
writer answering from both, served as one model on the gateway's own keys.

- :mod:`.plan`: what a fused request is (the panel, the judge, the writer, as routes).
- :mod:`.prompts`: sans-io: the judge's prompt, its structured analysis parsed,
  the writer's brief, the requests each role is sent.
- :mod:`.runner`: the async shell: the panel fanned out through the dispatcher,
  each answer metered and read, the judge asked, the writer dispatched.
"""

from tollhouse.fusion.plan import DEPTH_HEADER, FUSION_MODEL, FusionPlan, Panel
from tollhouse.fusion.prompts import PARTS, Analysis, parse_analysis

__all__ = [
    "DEPTH_HEADER",
    "FUSION_MODEL",
    "PARTS",
    "Analysis",
    "FusionPlan",
    "Panel",
    "parse_analysis",
]
