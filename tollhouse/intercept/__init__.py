"""Intercepting HTTPS mode: meter the tools whose base URL can't be changed.

``tollhouse intercept`` runs mitmproxy (as a library) with :mod:`.addon`;
``tollhouse run -- CMD`` starts a tool with it as its proxy (:mod:`.launch`).
Only LLM hosts (:mod:`.hosts`) are decrypted; their calls are classified
(:mod:`.calls`), metered by the core's own parsers as they pass (:mod:`.tap`)
and written to the same ledger. tollhouse's CA: :mod:`.ca`.
"""
