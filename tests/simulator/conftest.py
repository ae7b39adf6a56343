"""Fixtures: a simulator per test and official SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from tollhouse.simulator import Simulator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def openai_client(sim: Simulator) -> Callable[[str], openai.OpenAI]:
    def make(flavor: str = "openai") -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{sim.url}/{flavor}/v1", api_key="sk-test", max_retries=0)

    return make


@pytest.fixture
def claude(sim: Simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{sim.url}/anthropic", api_key="sk-ant", max_retries=0)


@pytest.fixture
def gemini(sim: Simulator) -> genai.Client:
    options = types.HttpOptions(base_url=f"{sim.url}/gemini", api_version="v1beta")
    return genai.Client(api_key="goog-key", http_options=options)
