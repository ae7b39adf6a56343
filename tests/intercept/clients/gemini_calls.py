"""Calls generativelanguage.googleapis.com with google-genai, configured only by the environment."""

from __future__ import annotations

import json

from google import genai

client = genai.Client(api_key="gemini-test-direct")
answer = client.models.generate_content(model="gemini-2.5-flash", contents="hello")
assert answer.usage_metadata is not None
print(
    json.dumps(
        {
            "call": "generate",
            "id": answer.response_id,
            # thinking is billed as output
            "output": (answer.usage_metadata.candidates_token_count or 0)
            + (answer.usage_metadata.thoughts_token_count or 0),
        }
    )
)
chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello"))
print(json.dumps({"call": "generate-stream", "id": chunks[-1].response_id}))
