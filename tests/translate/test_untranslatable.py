"""Request features a target cannot serve raise Untranslatable, naming the feature."""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.translate import Untranslatable, translate_request


def openai(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], **extra}


def openai_part(part: dict[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": [part]}]}


def anthropic(**extra: Any) -> dict[str, Any]:
    return {
        "model": "claude",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": "hi"}],
    } | extra


def anthropic_block(block: dict[str, Any]) -> dict[str, Any]:
    return anthropic(messages=[{"role": "user", "content": [block]}])


def gemini(config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **extra}
    if config is not None:
        body["generationConfig"] = config
    return body


def gemini_part(part: dict[str, Any]) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [part]}]}


PDF = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    # OpenAI features with no counterpart
    ("openai-chat", "anthropic", openai(n=2), "n>1"),
    ("openai-chat", "gemini", openai(n=3), "n>1"),
    ("openai-chat", "anthropic", openai(logprobs=True), "logprobs"),
    ("openai-chat", "gemini", openai(top_logprobs=2), "logprobs"),
    ("openai-chat", "anthropic", openai(logit_bias={"50256": -100}), "logit_bias"),
    ("openai-chat", "gemini", openai(modalities=["text", "audio"]), "audio output"),
    ("openai-chat", "anthropic", openai(functions=[{"name": "f"}]), "legacy functions"),
    ("openai-chat", "gemini", openai(web_search_options={}), "web_search_options"),
    (
        "openai-chat",
        "anthropic",
        openai(tools=[{"type": "custom", "custom": {"name": "grammar"}}]),
        "custom tools",
    ),
    (
        "openai-chat",
        "anthropic",
        openai_part({"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}),
        "audio/wav input to anthropic",
    ),
    (
        "openai-chat",
        "gemini",
        openai_part({"type": "file", "file": {"file_id": "file-123"}}),
        "file_id",
    ),
    (
        "openai-chat",
        "gemini",
        openai_part({"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}),
        "image URL input (gemini needs inline data)",
    ),
    (
        "openai-chat",
        "anthropic",
        openai(response_format={"type": "json_object"}),
        "JSON mode without a schema",
    ),
    (
        "openai-chat",
        "gemini",
        openai(messages=[{"role": "function", "name": "f", "content": "x"}]),
        "message role 'function'",
    ),
    # Anthropic features with no counterpart
    ("anthropic", "openai-chat", anthropic(container="c-1"), "container"),
    ("anthropic", "gemini", anthropic(mcp_servers=[{"url": "https://m"}]), "mcp_servers"),
    (
        "anthropic",
        "openai-chat",
        anthropic(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
        "server tool web_search_20250305",
    ),
    (
        "anthropic",
        "gemini",
        anthropic(thinking={"type": "adaptive", "display": "summarized"}),
        "visible thinking",
    ),
    (
        "anthropic",
        "openai-chat",
        anthropic_block({"type": "image", "source": {"type": "file", "file_id": "f"}}),
        "image from a file source",
    ),
    (
        "anthropic",
        "gemini",
        anthropic_block({"type": "search_result", "source": "s", "title": "t", "content": []}),
        "search_result content block",
    ),
    (
        "anthropic",
        "openai-chat",
        anthropic(
            messages=[
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "image", "source": PNG}],
                        }
                    ],
                },
            ]
        ),
        "media in a tool result to openai-chat",
    ),
    # Gemini features with no counterpart
    ("gemini", "openai-chat", gemini(cachedContent="cachedContents/1"), "cachedContent"),
    ("gemini", "anthropic", gemini({"candidateCount": 2}), "candidateCount>1"),
    ("gemini", "openai-chat", gemini({"responseModalities": ["TEXT", "IMAGE"]}), "image output"),
    ("gemini", "anthropic", gemini({"responseLogprobs": True}), "logprobs"),
    (
        "gemini",
        "anthropic",
        gemini({"thinkingConfig": {"includeThoughts": True}}),
        "visible thoughts",
    ),
    ("gemini", "openai-chat", gemini({"responseMimeType": "text/x.enum"}), "text/x.enum"),
    ("gemini", "openai-chat", gemini(tools=[{"googleSearch": {}}]), "Gemini tool googleSearch"),
    (
        "gemini",
        "anthropic",
        gemini_part({"executableCode": {"language": "PYTHON", "code": "1"}}),
        "executableCode",
    ),
    (
        "gemini",
        "openai-chat",
        gemini_part({"fileData": {"mimeType": "application/pdf", "fileUri": "files/abc"}}),
        "fileData from uploaded files",
    ),
    (
        "gemini",
        "anthropic",
        gemini_part({"inlineData": {"mimeType": "video/mp4", "data": "AAAA"}}),
        "video/mp4 input to anthropic",
    ),
    (
        "gemini",
        "openai-chat",
        gemini_part({"functionResponse": {"name": "f", "response": {}}}),
        "functionResponse 'f' without a matching functionCall",
    ),
]


@pytest.mark.parametrize(
    ("source", "target", "payload", "reason"),
    CASES,
    ids=[f"{c[0]}>{c[1]}:{c[3]}" for c in CASES],
)
def test_untranslatable_features_raise_with_a_reason(
    source: str, target: str, payload: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Untranslatable) as raised:
        translate_request(source, target, payload, model="m", stream=False)
    assert reason in raised.value.reason
    assert str(raised.value) == raised.value.reason


def test_pdf_is_fine_where_the_target_reads_pdfs() -> None:
    payload = anthropic_block({"type": "document", "source": PDF})
    body = translate_request("anthropic", "openai-chat", payload, model="m", stream=False)
    assert body["messages"][0]["content"][0]["type"] == "file"


def test_openai_tool_result_without_its_call_cannot_be_named_for_gemini() -> None:
    payload = openai(messages=[{"role": "tool", "tool_call_id": "lost", "content": "x"}])
    with pytest.raises(Untranslatable, match="tool result 'lost' without its tool call"):
        translate_request("openai-chat", "gemini", payload, model="m", stream=False)


@pytest.mark.parametrize(("source", "target"), [("bard", "anthropic"), ("gemini", "bard")])
def test_dialects_without_a_codec_are_untranslatable(source: str, target: str) -> None:
    known = "known: anthropic, gemini, openai-chat, openai-responses"
    with pytest.raises(Untranslatable, match=known):
        translate_request(source, target, gemini(), model="m", stream=False)


def test_a_dialect_without_a_codec_still_passes_through_to_itself() -> None:
    payload = {"model": "gpt-5.5", "input": "hi"}
    assert translate_request("bard", "bard", payload, model="m", stream=False) is payload
