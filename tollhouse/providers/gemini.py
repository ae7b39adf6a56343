"""Google Gemini (Generative Language API): ``x-goog-api-key`` auth."""

from __future__ import annotations

import re

from tollhouse.providers.base import Provider, model_error

# The model is a path segment of the upstream URL (/v1beta/models/MODEL:generateContent),
# after an optional "models/": no '/', ':' or anything else with a meaning in a URL.
GEMINI_OUTSIDE = re.compile(r"[^A-Za-z0-9._-]")
GEMINI_FORM = (
    "a Gemini model name is letters, digits and . _ - (e.g. gemini-2.5-flash), "
    "optionally after models/"
)


def gemini_model_error(model: str) -> str | None:
    """What is wrong with a Gemini model name (None: nothing)."""
    name = model.removeprefix("models/")
    problem = model_error(name, GEMINI_OUTSIDE, GEMINI_FORM)
    if problem is None and not name[0].isalnum():
        return f"model {name[:80]!r}: it must start with a letter or digit; {GEMINI_FORM}"
    return problem


class GeminiProvider(Provider):
    kind = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"
    default_key_env = "GEMINI_API_KEY"
    dialects = frozenset({"gemini"})
    pricing_id = "google"

    def model_problem(self, model: str) -> str | None:
        return gemini_model_error(model)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}
