"""tollhouse: a local-first LLM gateway that meters every call exactly."""

__version__ = "0.1.0"
