"""Reads the first event of a stream from api.x.ai, then releases the rest.

The stand-in holds the stream after its first event until this client, having
received that event, calls /release (directly, over loopback). A proxy that
buffered the stream would never deliver the first event early: the stand-in
would give up waiting and say so in its last event.
"""

from __future__ import annotations

import json
import sys
import urllib.request

import openai

release_url = sys.argv[1]
client = openai.OpenAI(base_url="https://api.x.ai/v1", api_key="xai-test", max_retries=0)
stream = client.chat.completions.create(
    model="grok-3-mini",
    messages=[{"role": "user", "content": "hold"}],
    stream=True,
    stream_options={"include_usage": True},
)
events = iter(stream)
first = next(events)
urllib.request.urlopen(release_url, timeout=10).read()  # NO_PROXY: straight to the stand-in
rest = list(events)
text = "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices)
print(json.dumps({"id": first.id, "first": first.choices[0].delta.content, "text": text}))
