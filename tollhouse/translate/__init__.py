"""Cross-provider translation for fallback chains: serve a client of one dialect
from a provider of another.

Dialects: ``openai-chat``, ``openai-responses``, ``anthropic``, ``gemini``. All calls are sans-io
(plain data in and out); the same dialect on both sides returns the input
unchanged.

The rule: translation never changes meaning silently. Every field of a
request or an answer is

1. translated faithfully; or
2. mapped by a documented lossless equivalent (each codec's docstring lists
   them: a failed tool result reaches OpenAI as ``Error: `` + its text; a
   multi-part tool result is joined with a blank line; a JSON tool result is
   a Gemini ``response`` object; an effort level becomes a thinking budget;
   a call without a Gemini signature gets the documented dummy one); or
3. omitted, only where the list below has it and it cannot change what the
   model is asked -- and then named: :func:`translate_request_noted` returns
   the omissions, and the gateway sends them to the client in
   ``X-Tollhouse-Translation-Omitted`` (``; ``-separated); or
4. refused: :class:`Untranslatable` (its ``reason`` names the feature), so the
   caller skips this candidate and says why.

Omissions (named when they happen):

* a sampling knob (``temperature``, ``top_p``, ``top_k``, ``seed``, the
  penalties) or reasoning setting the target model does not take, per the
  capability table (:mod:`tollhouse.translate.capabilities`); an effort the
  model lacks is sent as its nearest one, named;
* thinking, for a request whose open tool loop was made by another provider
  (Anthropic refuses it; the signed thinking cannot be rebuilt), whose tool
  choice forces a tool, or whose ``max_tokens`` leaves no room for a budget;
  a thinking budget above the model's most is sent as its most;
* earlier turns' opaque reasoning: Anthropic thinking blocks, Gemini thought
  signatures and thoughts, Responses ``reasoning`` items (only their own
  provider can read them); a Responses ``reasoning.summary`` (reasoning is
  not shown across dialects);
* Gemini ``safetySettings`` that only relax filters (the target applies its
  own; stricter settings are refused);
* a ``name`` on messages when there is one speaker (several are refused);
* ``strict`` tool schemas to Gemini (it has no strict mode);
* request fields a codec does not know (named as they were spelled).

Not named, because they cannot change the answer: storage, billing and cache
hints (OpenAI ``store``, ``metadata``, ``service_tier``, ``prompt_cache_key``;
Anthropic ``cache_control``, ``service_tier``; Gemini ``labels``), and
settings at their no-op values (``n: 1``, ``logprobs: false``, text-only
modalities).

Refused (the candidate is skipped): state kept by a provider (Responses
``previous_response_id``, ``conversation``, ``item_reference``), stop
sequences to Responses, ``n > 1``, logprobs, ``logit_bias``,
audio output, server-side tools, a system message mid-conversation, a
trailing assistant message (an Anthropic prefill), stricter Gemini safety
settings, visible thinking, media a target cannot take. A generation the
upstream reports as failed (Gemini ``MALFORMED_FUNCTION_CALL``...) reaches
the client as an error (:class:`GenerationFailed`), never as a normal answer.

Example (inside the gateway's async shell)::

    done = translate_request_noted("openai-chat", "anthropic", payload,
                                   model="claude-opus-4-8", stream=True)
    headers[OMITTED_HEADER] = omitted_header(done.omitted)
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
    repair_native,
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
    "repair_native",
    "stream_translator",
    "translate_request",
    "translate_request_noted",
    "translate_response",
]
