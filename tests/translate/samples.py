"""One conversation and one answer written in each dialect, and what each translates to.

The conversation: a system prompt, a user turn with text and an image, an
assistant turn with text and a tool call, the tool's result, and a follow-up
user question (which Anthropic and Gemini merge with the tool result into
one user turn).
"""

from __future__ import annotations

from typing import Any

PNG = "iVBORw0KGgo="
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
DESCRIPTION = "Current weather for a city."
SIGNATURE = "skip_thought_signature_validator"

OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": DESCRIPTION, "parameters": SCHEMA},
    }
]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": DESCRIPTION, "input_schema": SCHEMA}]
GEMINI_TOOLS = [
    {
        "functionDeclarations": [
            {"name": "get_weather", "description": DESCRIPTION, "parametersJsonSchema": SCHEMA}
        ]
    }
]


def openai_request(call_id: str = "call_1", result: str = '{"temp_c":21}') -> dict[str, Any]:
    return {
        "model": "gpt-5.5",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": result},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": OPENAI_TOOLS,
        "tool_choice": "auto",
        "max_completion_tokens": 256,
        "stop": ["###"],
    }


def anthropic_request(call_id: str = "call_1", result: str = '{"temp_c":21}') -> dict[str, Any]:
    image = {"type": "base64", "media_type": "image/png", "data": PNG}
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 256,
        "system": "You are terse.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris?"},
                    {"type": "image", "source": image},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {
                        "type": "tool_use",
                        "id": call_id,
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call_id, "content": result},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
        "tools": ANTHROPIC_TOOLS,
        "tool_choice": {"type": "auto"},
        "stop_sequences": ["###"],
    }


def gemini_request() -> dict[str, Any]:
    return {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Weather in Paris?"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Let me check."},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": SIGNATURE,
                    },
                ],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "response": {"temp_c": 21},
                        }
                    },
                    {"text": "And tomorrow?"},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "tools": GEMINI_TOOLS,
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"maxOutputTokens": 256, "stopSequences": ["###"]},
    }


RESPONSES_TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": DESCRIPTION,
        "parameters": SCHEMA,
        "strict": False,
    }
]


def responses_request(call_id: str = "call_1", result: str = '{"temp_c":21}') -> dict[str, Any]:
    return {
        "model": "gpt-5.5",
        "instructions": "You are terse.",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Weather in Paris?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                ],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
            {
                "type": "function_call",
                "call_id": call_id,
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": call_id, "output": result},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": RESPONSES_TOOLS,
        "tool_choice": "auto",
        "max_output_tokens": 256,
    }


def request(dialect: str) -> dict[str, Any]:
    return {
        "openai-responses": responses_request,
        "openai-chat": openai_request,
        "anthropic": anthropic_request,
        "gemini": gemini_request,
    }[dialect]()


MODELS = {"openai-chat": "gpt-5.5", "anthropic": "claude-opus-4-8", "gemini": "gemini-2.5-pro"}

# Gemini calls have no ids: the one in the conversation above becomes
# call_{turn}_{part} = call_1_1; its JSON result comes back re-serialised.
GEMINI_CALL_ID = "call_1_1"
GEMINI_RESULT = '{"temp_c": 21}'


def expected_request(source: str, target: str) -> dict[str, Any]:
    """What ``request(source)`` translates to for ``target``."""
    if source == "gemini":
        made = {"openai-chat": openai_request, "anthropic": anthropic_request}[target]
        return made(GEMINI_CALL_ID, GEMINI_RESULT) | {"model": MODELS[target]}
    if target == "gemini":
        return gemini_request()
    return request(target) | {"model": MODELS[target]}


# --- one answer: text, then a tool call; cache hits and reasoning in the usage

OPENAI_RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-5.5",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 10},
    },
}

ANTHROPIC_RESPONSE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-opus-4-8",
    "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Rome"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
        "output_tokens": 30,
        "output_tokens_details": {"thinking_tokens": 10},
    },
}

GEMINI_RESPONSE: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 120,
        "candidatesTokenCount": 20,
        "totalTokenCount": 150,
        "cachedContentTokenCount": 100,
        "thoughtsTokenCount": 10,
    },
    "modelVersion": "gemini-2.5-pro",
    "responseId": "resp-1",
}

RESPONSES_RESPONSE: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1_700_000_000,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "model": "gpt-5.5",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": []},
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_9",
            "name": "get_weather",
            "arguments": '{"city":"Rome"}',
        },
    ],
    "usage": {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 100},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 10},
        "total_tokens": 150,
    },
}
