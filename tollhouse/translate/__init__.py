"""Cross-provider translation for fallback chains: serve a client of one dialect
from a provider of another.

Dialects: ``openai-chat``, ``anthropic``, ``gemini``. All calls are sans-io
(plain data in and out); the same dialect on both sides returns the input
unchanged. A request feature the target cannot serve raises
:class:`Untranslatable` (its ``reason`` names the feature), so the caller can
move on to the next provider in the chain.

Example (inside the gateway's async shell)::

    body = translate_request("openai-chat", "anthropic", payload,
                             model="claude-opus-4-8", stream=True)
    translator = stream_translator("openai-chat", "anthropic",
                                   model="gpt-5.5", include_usage=True)
    async for chunk in upstream.content.iter_any():
        await client.write(translator.feed(chunk))
    await client.write(translator.finish())
"""

from tollhouse.translate.codec import (
    CODECS,
    OMITTED_HEADER,
    Codec,
    Translated,
    error_translate,
    failure_body,
    omitted_header,
    stream_translator,
    translate_request,
    translate_request_noted,
    translate_response,
)
from tollhouse.translate.model import GenerationFailed, Untranslatable
from tollhouse.translate.stream import StreamTranslator

__all__ = [
    "CODECS",
    "OMITTED_HEADER",
    "Codec",
    "GenerationFailed",
    "StreamTranslator",
    "Translated",
    "Untranslatable",
    "error_translate",
    "failure_body",
    "omitted_header",
    "stream_translator",
    "translate_request",
    "translate_request_noted",
    "translate_response",
]
