"""Calls api.openai.com with the official SDK, configured by nothing but the environment.

Prints one JSON line per call: what the client itself saw.
"""

from __future__ import annotations

import json

import openai

client = openai.OpenAI(api_key="sk-test-direct", max_retries=0)  # default base URL: the real host
messages = [{"role": "user", "content": "hello from a tool that can't be reconfigured"}]

raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
done = raw.parse()
print(json.dumps({"call": "chat", "id": done.id, "output_tokens": done.usage.completion_tokens}))

chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
print(
    json.dumps(
        {
            "call": "chat-stream",
            "id": chunks[0].id,
            "usage_chunks": sum(1 for c in chunks if c.usage is not None),
            "text": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
        }
    )
)

chunks = list(
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
)
usage = [c.usage for c in chunks if c.usage is not None]
print(json.dumps({"call": "chat-stream-usage", "id": chunks[0].id, "usage_chunks": len(usage)}))

with client.responses.stream(model="gpt-5-mini", input="why?") as stream:
    final = stream.get_final_response()
print(json.dumps({"call": "responses-stream", "id": final.id}))
