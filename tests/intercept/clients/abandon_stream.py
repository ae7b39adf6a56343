"""Reads the first event of a held stream from api.x.ai, then walks away."""

from __future__ import annotations

import json

import openai

client = openai.OpenAI(base_url="https://api.x.ai/v1", api_key="xai-test", max_retries=0)
stream = client.chat.completions.create(
    model="grok-3-mini", messages=[{"role": "user", "content": "hold"}], stream=True
)
first = next(iter(stream))
stream.close()  # the connection goes, mid-stream
print(json.dumps({"id": first.id}))
