"""Calls api.anthropic.com with the official SDK, configured by nothing but the environment."""

from __future__ import annotations

import json

import anthropic

client = anthropic.Anthropic(api_key="sk-ant-test-direct", max_retries=0)
messages = [{"role": "user", "content": "hello from a tool that can't be reconfigured"}]

message = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=messages)
print(json.dumps({"call": "messages", "id": message.id, "output": message.usage.output_tokens}))

with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=messages) as s:
    final = s.get_final_message()
print(json.dumps({"call": "messages-stream", "id": final.id, "output": final.usage.output_tokens}))
